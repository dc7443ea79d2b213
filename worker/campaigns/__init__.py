"""Marketing and review-request campaigns: schedules, audiences, recipients, coupons.

Every campaign text goes through worker.outbox and the same send gate as any other text."""

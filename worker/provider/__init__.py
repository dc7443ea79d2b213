"""The SMS provider boundary: the official Twilio client, configured once, and a local fake.

Named `provider`, not `twilio`, so that `twilio` in an import always means the SDK."""

"""How many creates per second the fake Twilio absorbs through the official client.

The outbound benchmark pushes 300+ messages/s through the fake; this measures the fake (and
our client factory's connection pooling) alone, so a slow outbound figure can be attributed.

    .venv/bin/python bench/fake_twilio_throughput.py --messages 3000 --threads 8 --mode process
    .venv/bin/python bench/fake_twilio_throughput.py --messages 3000 --threads 8 --mode thread

``--mode process`` runs ``msgworker fake-twilio`` as its own process (as the demo does);
``--mode thread`` runs it inside the benchmark process (as the tests do; shares the GIL).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from worker.provider.client import make_client, send_sms
from worker.provider.fake import FakeTwilio
from worker.settings import Settings

SID = "AC" + "1" * 32
TOKEN = "bench-token"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(base_url: str, messages: int, threads: int) -> float:
    client = make_client(
        Settings(TWILIO_API_BASE_URL=base_url, TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_HTTP_TIMEOUT=10)
    )
    numbers = [f"+1500555{i % 10000:04d}" for i in range(messages)]
    send_sms(client, to=numbers[0], body="warm-up", from_="+15005550006")
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(
            lambda n: send_sms(client, to=n, body="Your booking is confirmed", from_="+15005550006"), numbers
        ):
            pass
    return messages / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--mode", choices=["thread", "process"], default="process")
    args = parser.parse_args()

    if args.mode == "thread":
        with FakeTwilio(SID, TOKEN) as fake:
            rate = run(fake.base_url, args.messages, args.threads)
            recorded = len(fake.messages)
    else:
        port = _free_port()
        exe = Path(sys.executable).parent / "msgworker"
        proc = subprocess.Popen(
            [str(exe), "fake-twilio", "--port", str(port), "--account-sid", SID, "--auth-token", TOKEN,
             "--callbacks", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    httpx.get(f"{base}/_fake/messages", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            rate = run(base, args.messages, args.threads)
            recorded = len(httpx.get(f"{base}/_fake/messages", timeout=30).json()["messages"])
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(
        f"mode={args.mode} threads={args.threads} messages={args.messages} recorded={recorded} creates_per_s={rate:.0f}"
    )


if __name__ == "__main__":
    main()

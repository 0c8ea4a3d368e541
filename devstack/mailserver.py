"""A local SMTP server for development and tests: each message it accepts becomes one `.eml` file.

`python -m devstack.mailserver --port 8025 --dir var/mail` (aiosmtpd). It accepts any
sender and recipient, writes the message as received (with the envelope in
`X-Envelope-From` / `X-Envelope-To` headers on top) to `<dir>/<time>-<id>.eml`, and
only then answers 250: a message the client saw accepted is on disk.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller


class MaildirHandler:
    def __init__(self, directory: Path):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):
        envelope_headers = (f"X-Envelope-From: {envelope.mail_from}\r\n"
                            f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n").encode()
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(envelope_headers + content)
        # renamed once complete: a reader never sees half a message
        os.replace(temporary, self.directory / name)
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", default="var/mail")
    args = parser.parse_args()
    controller = Controller(MaildirHandler(Path(args.dir)), hostname=args.host, port=args.port)
    controller.start()
    print(f"mail server on {args.host}:{args.port}, messages in {args.dir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()

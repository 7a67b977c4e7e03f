"""A real SMTP server for the connector's tests (aiosmtpd, Debian package python3-aiosmtpd):
STARTTLS required, AUTH PLAIN/LOGIN checked against one login, every accepted message
written to OUTDIR as N.eml plus N.json (envelope and login), the .json last. With LMTP (a
unix socket path), each message is first delivered there (a Dovecot's LMTP), so recipients
find it in their INBOX; a refused delivery fails the SMTP transaction.

usage: smtp_sink.py PORT CERT KEY OUTDIR LOGIN PASSWORD [LMTP]
"""
import json
import os
import smtplib
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, outdir, login, password = sys.argv[1:7]
lmtp = sys.argv[7] if len(sys.argv) > 7 else None


class Sink:
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if lmtp:
            try:
                with smtplib.LMTP(lmtp) as relay:
                    relay.sendmail(envelope.mail_from, envelope.rcpt_tos,
                                   envelope.original_content or envelope.content)
            except Exception as e:  # noqa: BLE001 - reported to the client
                return f"451 LMTP delivery failed: {e}"
        with self.lock:
            self.count += 1
            n = self.count
        with open(os.path.join(outdir, f"{n}.eml"), "wb") as f:
            f.write(envelope.original_content or envelope.content)
        meta = {
            "from": envelope.mail_from,
            "rcpt": envelope.rcpt_tos,
            "login": (session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None),
            "tls": session.ssl is not None,
        }
        tmp = os.path.join(outdir, f"{n}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(meta, f)
        os.rename(tmp, os.path.join(outdir, f"{n}.json"))
        return "250 OK queued"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == login
        and auth_data.password.decode() == password
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(
    Sink(),
    hostname="127.0.0.1",
    port=int(port),
    tls_context=context,
    require_starttls=True,
    authenticator=authenticator,
    auth_require_tls=True,
)
controller.start()
print("ready", flush=True)
threading.Event().wait()

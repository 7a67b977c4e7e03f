#!/usr/bin/env python3
"""Idle registered SIP connections, for the memory-per-connection figure (run.sh).

Opens N TCP or TLS connections to a SIP server on loopback, REGISTERs over each one with
Digest (401, then credentials; MD5, qop=auth when offered) as user{FIRST_USER + i % users}@example.com
(users = ceil(N / PER_USER)). One REGISTER per user is in progress at a time: concurrent
REGISTERs of one AOR contend on its binding record (Switchboard updates it with a checked
commit and answers 500 "registration kept changing" after a few lost races, which real
clients, one REGISTER per device at a time, do not cause),
then keeps them all open and idle until stdin closes or a line arrives, so the caller can read
the server's memory. Prints one status line when all are registered:

    registered N of N (F failed) in S s

Usage: idle_conns.py HOST PORT tcp|tls N PASSWORD [PER_USER [FIRST_USER]]

FIRST_USER (default 0) shifts the user numbers: registrations outlive a Switchboard restart
(they are in its database), so the TLS phase uses other users than the TCP phase.

Bounded: at most 64 connections are being set up at once, each step has a 20 s timeout, and
the whole run ends when stdin does. Certificates are not verified (the servers use
self-signed ones on 127.0.0.1).
"""

import asyncio
import hashlib
import os
import re
import ssl
import sys
import time

STEP_TIMEOUT = 20.0


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def param(challenge, name):
    m = re.search(name + r'="?([^",]*)"?', challenge)
    return m.group(1) if m else None


def digest(challenge, user, password, method, uri):
    realm, nonce = param(challenge, "realm"), param(challenge, "nonce")
    qop, opaque = param(challenge, "qop"), param(challenge, "opaque")
    ha1 = md5(f"{user}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    out = f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", algorithm=MD5'
    if qop and "auth" in qop.split(","):
        cnonce = os.urandom(8).hex()
        resp = md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
        out += f', qop=auth, nc=00000001, cnonce="{cnonce}"'
    else:
        resp = md5(f"{ha1}:{nonce}:{ha2}")
    out += f', response="{resp}"'
    if opaque:
        out += f', opaque="{opaque}"'
    return out


async def read_message(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    while head.startswith(b"\r\n"):  # keep-alive pongs
        head = head[2:]
    m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
    if m and int(m.group(1)):
        await reader.readexactly(int(m.group(1)))
    return head.decode(errors="replace")


def register(transport, local, user, cseq, auth=None):
    via_t = transport.upper()
    lines = [
        "REGISTER sip:example.com SIP/2.0",
        f"Via: SIP/2.0/{via_t} {local[0]}:{local[1]};branch=z9hG4bK{os.urandom(8).hex()};rport",
        f"From: <sip:{user}@example.com>;tag={os.urandom(4).hex()}",
        f"To: <sip:{user}@example.com>",
        f"Call-ID: {os.urandom(8).hex()}@{local[0]}",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{user}@{local[0]}:{local[1]};transport={transport}>",
        "Expires: 3600",
        "Max-Forwards: 70",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def one(i, host, port, transport, password, users, first_user, ctx, sem, locks, held):
    user = f"user{first_user + i % users}"
    async with locks[i % users], sem:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=ctx), STEP_TIMEOUT
            )
            local = writer.get_extra_info("sockname")
            call = register(transport, local, user, 1)
            writer.write(call)
            first = await asyncio.wait_for(read_message(reader), STEP_TIMEOUT)
            if " 401 " in first.split("\r\n", 1)[0]:
                challenge = next(
                    l.split(":", 1)[1].strip()
                    for l in first.split("\r\n")
                    if l.lower().startswith("www-authenticate:")
                )
                auth = digest(challenge, user, password, "REGISTER", "sip:example.com")
                writer.write(register(transport, local, user, 2, auth))
                first = await asyncio.wait_for(read_message(reader), STEP_TIMEOUT)
            if " 200 " not in first.split("\r\n", 1)[0]:
                print(f"conn {i}: {first.splitlines()[0]}", file=sys.stderr)
                writer.close()
                return False
            held.append((reader, writer))
            return True
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, StopIteration) as e:
            print(f"conn {i}: {e!r}", file=sys.stderr)
            return False


async def main():
    host, port, transport, n, password = sys.argv[1:6]
    per_user = int(sys.argv[6]) if len(sys.argv) > 6 else 10
    first_user = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    port, n = int(port), min(int(n), 18000)
    users = max(1, -(-n // per_user))
    ctx = None
    if transport == "tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    sem = asyncio.Semaphore(64)
    locks = [asyncio.Lock() for _ in range(users)]
    held = []
    t0 = time.monotonic()
    results = await asyncio.gather(
        *(one(i, host, port, transport, password, users, first_user, ctx, sem, locks, held) for i in range(n))
    )
    ok = sum(results)
    print(
        f"registered {ok} of {n} ({n - ok} failed) in {time.monotonic() - t0:.1f} s",
        flush=True,
    )
    # Idle until the caller is done measuring (a line on stdin, or stdin closed).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for _, w in held:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())

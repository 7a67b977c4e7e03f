"""Interop scenarios: a real third-party ActiveSync client (pyactivesync, EAS 16.1) against a
Switchboard server started by core/tests/eas_interop.rs.

Usage: interop.py SCENARIO. The server is described by environment variables:
SB_SERVER (host:port of HTTPS), SB_SWITCHBOARD (the switchboard binary), SB_CONFIG (its config
file, for `mail import` and `device …`), SB_MAIL (directory of .eml fixtures). Users
alice@example.com and bob@example.com have the password SB_PASSWORD. Every wait is bounded;
a failed check raises, printing what was seen.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from email.message import EmailMessage

from pyactivesync import BodyType, Client, Contact, FolderType
from pyactivesync._wbxml import WBXMLReader, WBXMLWriter, find_all, leaves, wtag
from pyactivesync.exceptions import EASError, StatusError

SERVER = os.environ["SB_SERVER"]
PASSWORD = os.environ["SB_PASSWORD"]
ALICE = "alice@example.com"
BOB = "bob@example.com"
MAIL = os.environ["SB_MAIL"]

INBOX_SUBJECTS = {"Quarterly report", "Lunch on Friday?", "Signed contract attached"}
CONTRACT = bytes(range(256)) * 4


def client(user: str, device: str) -> Client:
    # Verified TLS: the test points REQUESTS_CA_BUNDLE at the server's self-signed certificate.
    return Client(SERVER, user, PASSWORD, device_id=device, verify_ssl=True, timeout=30)


def switchboard(*args: str) -> str:
    out = subprocess.run(
        [os.environ["SB_SWITCHBOARD"], "--config", os.environ["SB_CONFIG"], *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise AssertionError(f"switchboard {' '.join(args)} failed: {out.stdout}{out.stderr}")
    return out.stdout


def check(cond: bool, what: str, seen: object) -> None:
    if not cond:
        raise AssertionError(f"{what}; seen: {seen!r}")


def folder(c: Client, kind: FolderType):
    for f in c.list_folders():
        if f.type == kind:
            return f
    raise AssertionError(f"no {kind.name} folder")


def sync_all(c: Client, folder_id: str, key: str = "0"):
    """Sync until nothing more is available (bounded); returns (key, added, changed, deleted)."""
    added, changed, deleted = [], [], []
    if key == "0":
        key = c.sync_folder(folder_id).sync_key
    for _ in range(50):
        r = c.sync_folder(folder_id, key, window_size=25)
        key = r.sync_key
        added += r.added
        changed += r.changed
        deleted += r.deleted
        if not r.more_available:
            return key, added, changed, deleted
    raise AssertionError("MoreAvailable never ended")


def subjects(items) -> set[str]:
    return {i.fields.get("Email.Subject") for i in items}


def by_subject(items, subject: str):
    for i in items:
        if i.fields.get("Email.Subject") == subject:
            return i
    raise AssertionError(f"no item {subject!r} in {subjects(items)}")


# -- scenarios ---------------------------------------------------------------------------------


def provision_and_folders() -> None:
    with client(ALICE, "interop-prov") as c:
        key = c.provision()
        check(key.isdigit() and key != "0", "a final policy key", key)
        folders = c.list_folders()
        kinds = {f.type for f in folders}
        for k in (FolderType.INBOX, FolderType.SENT_ITEMS, FolderType.DRAFTS, FolderType.DELETED_ITEMS, FolderType.CONTACTS):
            check(k in kinds, f"{k.name} in the hierarchy", [(f.name, f.type) for f in folders])
        inbox = folder(c, FolderType.INBOX)
        check(inbox.parent_id == "0", "Inbox at the top", inbox)


def mail_sync() -> None:
    with client(ALICE, "interop-sync") as c:
        inbox = folder(c, FolderType.INBOX)
        _, added, _, _ = sync_all(c, inbox.id)
        check(subjects(added) == INBOX_SUBJECTS, "the imported messages", subjects(added))
        plain = by_subject(added, "Quarterly report")
        check("carol@example.org" in plain.fields.get("Email.From", ""), "From", plain.fields)
        fetched = c.fetch_item(inbox.id, plain.server_id, body_type=BodyType.PLAIN_TEXT)
        text = fetched.body.data if fetched.body else None
        check(text is not None and "Revenue is up 12 percent" in str(text), "plain body", text)
        alt = by_subject(added, "Lunch on Friday?")
        html = c.fetch_item(inbox.id, alt.server_id, body_type=BodyType.HTML).body
        check(html is not None and "<b>new noodle place</b>" in str(html.data), "HTML body", html)
        mime = c.fetch_item(inbox.id, plain.server_id, body_type=BodyType.MIME).body
        raw = mime.data if mime else b""
        raw = raw if isinstance(raw, bytes) else str(raw).encode()
        check(b"Message-ID: <q1@example.org>" in raw, "the original MIME", raw[:300])


def incremental_sync() -> None:
    with client(ALICE, "interop-incr") as c:
        inbox = folder(c, FolderType.INBOX)
        key, added, _, _ = sync_all(c, inbox.id)
        check(len(added) == 3, "three messages first", subjects(added))
        r = c.sync_folder(inbox.id, key)
        check(not r.added and not r.changed and not r.deleted, "nothing new yet", r)
        key = r.sync_key
        # Server-side change: new mail imported by the admin while the client holds its key.
        switchboard("mail", "import", "--user", ALICE, os.path.join(MAIL, "..", "later", "late-news.eml"))
        key, added, _, _ = sync_all(c, inbox.id, key)
        check(subjects(added) == {"Late news"}, "only the new message", subjects(added))
        # A change made by another device (read flag, delete) shows up as Change / Delete.
        with client(ALICE, "interop-incr-2") as other:
            okey, oadded, _, _ = sync_all(other, inbox.id)
            late = by_subject(oadded, "Late news")
            quarterly = by_subject(oadded, "Quarterly report")
            from pyactivesync import EmailChange

            res = other.apply_email_changes(
                inbox.id, okey, [EmailChange(late.server_id, read=True), EmailChange(quarterly.server_id, delete=True)]
            )
            check(all(s == "1" for s in res.statuses.values()), "changes accepted", res)
        key, added, changed, deleted = sync_all(c, inbox.id, key)
        check(len(deleted) == 1, "the deleted message", deleted)
        check(any(ch.fields.get("Email.Read") == "1" for ch in changed), "the read flag", changed)


def send_mail() -> None:
    with client(ALICE, "interop-send-a") as a, client(BOB, "interop-send-b") as b:
        binbox = folder(b, FolderType.INBOX)
        bkey, before, _, _ = sync_all(b, binbox.id)
        check(not before, "Bob's Inbox starts empty", subjects(before))
        msg = EmailMessage()
        msg["From"] = ALICE
        msg["To"] = BOB
        msg["Subject"] = "Hello Bob from a phone"
        msg.set_content("Sent through ActiveSync SendMail.\n")
        a.send_mail(msg)
        bkey, added, _, _ = sync_all(b, binbox.id, bkey)
        check(subjects(added) == {"Hello Bob from a phone"}, "the message in Bob's Inbox", subjects(added))
        body = b.fetch_item(binbox.id, added[0].server_id, body_type=BodyType.PLAIN_TEXT).body
        check(body is not None and "Sent through ActiveSync SendMail." in str(body.data), "its body", body)
        # Alice's copy in Sent Items.
        sent = folder(a, FolderType.SENT_ITEMS)
        _, sadded, _, _ = sync_all(a, sent.id)
        check("Hello Bob from a phone" in subjects(sadded), "Alice's Sent Items copy", subjects(sadded))


def ping_wakeup() -> None:
    with client(BOB, "interop-ping") as b, client(ALICE, "interop-ping-a") as a:
        inbox = folder(b, FolderType.INBOX)
        key, _, _, _ = sync_all(b, inbox.id)
        result: dict[str, object] = {}

        def park() -> None:
            try:
                started = time.monotonic()
                result["ping"] = b.ping([inbox.id], heartbeat=120, timeout=150)
                result["secs"] = time.monotonic() - started
            except Exception as e:  # reported below
                result["error"] = e

        t = threading.Thread(target=park)
        t.start()
        time.sleep(1.0)  # let the Ping park (the answer is the same if it has not yet)
        msg = EmailMessage()
        msg["From"] = ALICE
        msg["To"] = BOB
        msg["Subject"] = "Wake up"
        msg.set_content("ping!\n")
        a.send_mail(msg)
        t.join(timeout=150)
        check(not t.is_alive(), "the Ping answered", result)
        check("error" not in result, "no error", result)
        ping = result["ping"]
        check(ping.status == "2" and inbox.id in ping.changed_folder_ids, "Status 2 with the Inbox", ping)
        _, added, _, _ = sync_all(b, inbox.id, key)
        check(subjects(added) == {"Wake up"}, "the new mail", subjects(added))


def attachments() -> None:
    with client(ALICE, "interop-att") as c:
        inbox = folder(c, FolderType.INBOX)
        _, added, _, _ = sync_all(c, inbox.id)
        item = by_subject(added, "Signed contract attached")
        # Sync carries the attachment's metadata (as phones use it)...
        check(item.fields.get("AirSyncBase.DisplayName") == "contract.bin", "its name", item.fields)
        ref = item.fields.get("AirSyncBase.FileReference")
        check(bool(ref), "a FileReference", item.fields)
        # ...and ItemOperations Fetch of the FileReference returns its exact bytes.
        data = c.fetch_attachment(ref)
        check(data == CONTRACT, "the attachment's exact bytes", (len(data), data[:16]))
        body = c.fetch_item(inbox.id, item.server_id, body_type=BodyType.PLAIN_TEXT).body
        check(body is not None and "The signed contract is attached." in str(body.data), "the body", body)


def move_items() -> None:
    with client(ALICE, "interop-move") as c:
        inbox = folder(c, FolderType.INBOX)
        projects = c.create_folder("Projects", parent_id="0")
        check(any(f.id == projects.id for f in c.list_folders()), "the new folder listed", projects)
        ikey, added, _, _ = sync_all(c, inbox.id)
        pkey, padded, _, _ = sync_all(c, projects.id)
        check(not padded, "Projects starts empty", subjects(padded))
        item = by_subject(added, "Lunch on Friday?")
        new_id = c.move_item(item.server_id, inbox.id, projects.id)
        check(bool(new_id), "a new id", new_id)
        # MoveItems is not echoed back to the device that moved it (it already shows the
        # message under its new id), in either folder.
        pkey, padded, _, pdeleted = sync_all(c, projects.id, pkey)
        ikey, iadded, _, ideleted = sync_all(c, inbox.id, ikey)
        check(not padded and not iadded and not ideleted, "no echo of the move", (padded, iadded, ideleted))
        moved = c.fetch_item(projects.id, new_id, body_type=BodyType.PLAIN_TEXT)
        check(moved.fields.get("Email.Subject") == "Lunch on Friday?", "the message at its new id", moved)
        # Another device sees the message in Projects and no longer in the Inbox.
        with client(ALICE, "interop-move-2") as other:
            _, oadded, _, _ = sync_all(other, inbox.id)
            check(subjects(oadded) == INBOX_SUBJECTS - {"Lunch on Friday?"}, "Inbox without it", subjects(oadded))
            _, padded, _, _ = sync_all(other, projects.id)
            check(subjects(padded) == {"Lunch on Friday?"}, "Projects with it", subjects(padded))


def search() -> None:
    with client(ALICE, "interop-search") as c:
        # GAL: no directory connector serves example.com by default, so the core's own users
        # are the directory (with [plugins.ldap] it is the directory's people).
        gal = c.search_gal("Bob")
        found = [(g.display_name, g.email_address) for g in gal]
        check(found == [("Bob Builder", BOB)], "Bob in the GAL of local users", found)
        # No match is one empty Result element ([MS-ASCMD] 2.2.3.150.1), which the client
        # reads as an entry with no fields.
        none = [(g.display_name, g.email_address) for g in c.search_gal("nobody-here")]
        check(none == [(None, None)], "no GAL match for an unknown name", none)
        inbox = folder(c, FolderType.INBOX)
        # Mailbox search by free text, the form phones send: the client's search_mailbox
        # routes free text to Find (not served yet) and its date-only Search form has no
        # FreeText (not served yet either), so the Search request is built with its codec.
        w = WBXMLWriter()
        query = wtag(
            "Search",
            "Query",
            children=[
                wtag(
                    "Search",
                    "And",
                    children=[
                        wtag("AirSync", "Class", text="Email"),
                        wtag("AirSync", "CollectionId", text=inbox.id),
                        wtag("Search", "FreeText", text="contract"),
                    ],
                )
            ],
        )
        options = wtag("Search", "Options", children=[wtag("Search", "Range", text="0-9")])
        store = wtag("Search", "Store", children=[wtag("Search", "Name", text="Mailbox"), query, options])
        w.tag("Search", "Search", children=[store])
        nodes = WBXMLReader(c._post("Search", w.render())).parse()
        found = [leaves(ch) for _, _, ch in find_all(nodes, "Search.Result")]
        subj = {r.get("Email.Subject") for r in found}
        check(subj == {"Signed contract attached"}, "mailbox search finds the message", found)


def contacts() -> None:
    with client(ALICE, "interop-contacts") as c:
        cf = folder(c, FolderType.CONTACTS)
        key, existing, _, _ = sync_all(c, cf.id)
        res = c.create_contact(
            cf.id,
            key,
            Contact(
                first_name="Grace",
                last_name="Hopper",
                email1_address="grace@example.net",
                mobile_phone_number="+1 555 0100",
                company_name="Navy",
            ),
        )
        check(res.status == "1" and res.server_id, "contact created", res)
    with client(ALICE, "interop-contacts-2") as other:
        cf = folder(other, FolderType.CONTACTS)
        _, added, _, _ = sync_all(other, cf.id)
        grace = [i for i in added if i.fields.get("Contacts.LastName") == "Hopper"]
        check(len(grace) == 1, "the contact on another device", [i.fields for i in added])
        f = grace[0].fields
        check(f.get("Contacts.FirstName") == "Grace", "first name", f)
        check(f.get("Contacts.Email1Address", "").find("grace@example.net") >= 0, "e-mail", f)
        check(f.get("Contacts.MobilePhoneNumber") == "+1 555 0100", "mobile", f)


def device_admin() -> None:
    device = "interop-admin"
    with client(ALICE, device) as c:
        inbox = folder(c, FolderType.INBOX)
        key, _, _, _ = sync_all(c, inbox.id)
        listed = switchboard("device", "list", "--user", ALICE)
        check(device in listed and "provisioned" in listed, "device list shows it", listed)
        shown = switchboard("device", "show", ALICE, device)
        check("collections:  1" in shown and "pyactivesync" in shown, "device show", shown)
        # Resync: the phone's sync keys are forgotten, so its next Sync is told to start over.
        switchboard("device", "resync", ALICE, device)
        try:
            c.sync_folder(inbox.id, key)
            raise AssertionError("the old sync key still worked after resync")
        except StatusError as e:
            check(e.code in ("3", "12"), "invalid sync key / hierarchy changed", e)
        _, added, _, _ = sync_all(c, inbox.id)
        check(subjects(added) == INBOX_SUBJECTS, "a full re-sync", subjects(added))
        # Wipe: served at the next request; the device is made to provision.
        switchboard("device", "wipe", ALICE, device)
        try:
            c.sync_folder(inbox.id, "0")
            raise AssertionError("a command went through with a wipe pending")
        except StatusError as e:
            check(e.code == "140", "Status 140 (remote wipe requested)", e)
        try:
            c.provision()
        except EASError:
            pass  # the client does not implement the wipe directive; what it was sent counts
        shown = switchboard("device", "show", ALICE, device)
        check("wipe:         sent" in shown, "the wipe directive was sent", shown)
        switchboard("device", "remove", ALICE, device)
        listed = switchboard("device", "list", "--user", ALICE)
        check(device not in listed, "device removed", listed)
    # A removed device starts over like a new one.
    with client(ALICE, device) as c:
        inbox = folder(c, FolderType.INBOX)
        _, added, _, _ = sync_all(c, inbox.id)
        check(subjects(added) == INBOX_SUBJECTS, "the removed device syncs again", subjects(added))


SCENARIOS = {
    f.__name__: f
    for f in (
        provision_and_folders,
        mail_sync,
        incremental_sync,
        send_mail,
        ping_wakeup,
        attachments,
        move_items,
        search,
        contacts,
        device_admin,
    )
}

if __name__ == "__main__":
    name = sys.argv[1]
    SCENARIOS[name]()
    print(f"scenario {name}: ok")

"""The real Flask, for session-flask's interop tests.

Run by the Rust tests with the interpreter in $FLASK_PYTHON (scripts/test makes a venv
with the versions in requirements.txt):

  flask_helper.py vectors            known-answer cookies Flask wrote, with what they hold
  flask_helper.py decode SECRET      one cookie per stdin line -> what Flask's open_session reads
  flask_helper.py serve SECRET [FALLBACK...]
                                     a small Flask app on a free loopback port (printed first);
                                     exits when stdin closes

Values are described in a typed form ("describe") so the Rust side can compare Python
types exactly, without going through the tagged JSON under test. Nothing here prints a
cookie except `vectors`, whose cookies are test data signed with test keys.
"""

import datetime
import json
import sys
import threading
import uuid

import flask
import itsdangerous.timed
from markupsafe import Markup

SIGNED_AT = 1700000000


def describe(v):
    if v is None:
        return {"t": "none"}
    if isinstance(v, bool):
        return {"t": "bool", "v": v}
    if isinstance(v, int):
        return {"t": "int", "v": str(v)}
    if isinstance(v, float):
        return {"t": "float", "v": repr(v)}
    if isinstance(v, Markup):
        return {"t": "markup", "v": str(v)}
    if isinstance(v, str):
        return {"t": "str", "v": v}
    if isinstance(v, bytes):
        return {"t": "bytes", "v": v.hex()}
    if isinstance(v, tuple):
        return {"t": "tuple", "v": [describe(x) for x in v]}
    if isinstance(v, list):
        return {"t": "list", "v": [describe(x) for x in v]}
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise TypeError(f"dict with non-str keys: {v!r}")
        return {"t": "dict", "v": {k: describe(x) for k, x in v.items()}}
    if isinstance(v, uuid.UUID):
        return {"t": "uuid", "v": v.hex}
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None or v.utcoffset() != datetime.timedelta(0):
            raise ValueError("Flask's sessions hold UTC datetimes")
        return {"t": "datetime", "v": int(v.timestamp())}
    raise TypeError(type(v).__name__)


def make_app(secret, fallbacks=()):
    app = flask.Flask(__name__)
    app.config["SECRET_KEY"] = secret
    app.config["SECRET_KEY_FALLBACKS"] = list(fallbacks)
    return app


def read_session(app, cookie):
    with app.test_request_context(headers={"Cookie": f"session={cookie}"}):
        s = app.session_interface.open_session(app, flask.request)
        return {"session": describe(dict(s)), "permanent": bool(s.permanent)}


def fill(case):
    s = flask.session
    if case == "login":
        s["user_id"] = 42
        s["username"] = "alice"
    elif case == "permanent":
        s["user_id"] = 7
        s.permanent = True
    elif case == "flashes":
        flask.flash("Welcome back")
        flask.flash("Wrong password", "error")
    elif case == "types":
        s["tuple"] = (1, "a", None, ())
        s["bytes"] = b"\x00\xffbin"
        s["markup"] = Markup("<b>hi</b> &amp;")
        s["uuid"] = uuid.UUID("12345678-1234-5678-1234-567812345678")
        s["aware"] = datetime.datetime(2024, 5, 17, 12, 30, 45, tzinfo=datetime.timezone.utc)
        s["naive"] = datetime.datetime(2001, 2, 3, 4, 5, 6, 789)
        s["floats"] = [1.5, 1e16, 0.1, -0.0, 1e-05, 123456789.125]
        s["ints"] = [0, -1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**70, -(2**64)]
        s["flags"] = [True, False, None]
        s["empty"] = [[], {}, "", ()]
        s["nested"] = {"a": {"b": [1, {"c": (2,)}]}, "z": "last"}
    elif case == "escape":
        s["esc"] = {" t": 1}
        s["esc2"] = {" di": {" b": "not bytes"}}
        s[" m"] = "a key that looks like a tag"
    elif case == "unicode":
        s["text"] = "h\u00e9llo \U0001f600 \u2028 \x00 \x7f \" \\ / \t"
        s["caf\u00e9"] = "key"
    elif case == "compressed":
        s["big"] = ["repeated text"] * 200
    else:
        raise ValueError(case)
    return "ok"


def vectors():
    itsdangerous.timed.TimestampSigner.get_timestamp = lambda self: SIGNED_AT
    out = []
    cases = [
        ("login", "interop-test-key"),
        ("permanent", "interop-test-key"),
        ("flashes", "interop-test-key"),
        ("types", "interop-test-key"),
        ("escape", "interop-test-key"),
        ("unicode", "interop-test-key"),
        ("compressed", "interop-test-key"),
        ("fallback", "old-interop-key"),
        ("other-key", "someone-else"),
    ]
    reader = make_app("interop-test-key", ["old-interop-key"])
    for name, secret in cases:
        app = make_app(secret)
        case = {"fallback": "login", "other-key": "login"}.get(name, name)
        app.add_url_rule("/", "fill", lambda case=case: fill(case))
        client = app.test_client()
        client.get("/")
        cookie = client.get_cookie("session").value
        out.append({"name": name, "secret": secret, "signed_at": SIGNED_AT, "cookie": cookie,
                    "read": read_session(reader, cookie)})
    json.dump(out, sys.stdout, indent=1)
    print()


def decode(secret):
    app = make_app(secret)
    for line in sys.stdin:
        try:
            print(json.dumps(read_session(app, line.strip())), flush=True)
        except Exception as e:  # the test fails with this, rather than on a closed pipe
            print(json.dumps({"error": repr(e)}), flush=True)


def serve(secret, fallbacks):
    from werkzeug.serving import make_server

    app = make_app(secret, fallbacks)

    @app.post("/login")
    def login():
        flask.session["user_id"] = int(flask.request.args["id"])
        flask.session["username"] = flask.request.args["user"]
        flask.session.permanent = flask.request.args.get("remember") == "1"
        flask.flash("Logged in", "success")
        return "ok"

    @app.get("/whoami")
    def whoami():
        if "user_id" not in flask.session:
            return "not logged in", 401
        return {"user_id": flask.session["user_id"], "username": flask.session["username"]}

    @app.get("/session")
    def session():
        return {"session": describe(dict(flask.session)), "permanent": bool(flask.session.permanent)}

    @app.get("/flashes")
    def flashes():
        return {"flashes": [list(f) for f in flask.get_flashed_messages(with_categories=True)]}

    @app.post("/set")
    def set_value():
        flask.session[flask.request.args["key"]] = json.loads(flask.request.args["value"])
        return "ok"

    @app.post("/logout")
    def logout():
        flask.session.clear()
        return "ok"

    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)

    def watch_stdin():
        # The test holds our stdin: when it ends (or crashes), so do we.
        sys.stdin.read()
        server.shutdown()

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "vectors":
        vectors()
    elif cmd == "decode":
        decode(sys.argv[2])
    elif cmd == "serve":
        serve(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(f"unknown command {cmd}")

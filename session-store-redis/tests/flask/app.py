"""The Flask side of the Flask-Session interop tests (tests/flask_interop.rs).

A real Flask app with Flask-Session 0.8 on Redis (msgspec serializer), started by the Rust
tests on a free loopback port. It prints the port on its first line of stdout, then serves
until the test kills it by PID.

    python app.py REDIS_URL PREFIX [SECRET_KEY_FOR_SIGNED_IDS]

Values travel back to Rust as `repr()` text, so a test sees the Python type too: `42` is
an int, `'42'` a str, `b'42'` bytes. Nothing here logs session ids or data.
"""

import datetime
import logging
import sys

import redis
from flask import Flask, session
from flask_session import Session
from werkzeug.serving import make_server

redis_url, prefix = sys.argv[1], sys.argv[2]
signing_key = sys.argv[3] if len(sys.argv) > 3 else None

app = Flask(__name__)
app.config.update(
    SECRET_KEY=signing_key or "unused-without-the-signer",
    SESSION_TYPE="redis",
    SESSION_REDIS=redis.from_url(redis_url),
    SESSION_KEY_PREFIX=prefix,
    SESSION_USE_SIGNER=signing_key is not None,
    SESSION_SERIALIZATION_FORMAT="msgpack",
    PERMANENT_SESSION_LIFETIME=datetime.timedelta(hours=1),
)
Session(app)


@app.post("/login/<int:user_id>")
def login(user_id):
    session["user_id"] = user_id
    session["name"] = "ann"
    return "ok"


@app.post("/logout")
def logout():
    session.clear()
    return "ok"


@app.get("/get/<key>")
def get(key):
    return repr(session[key]) if key in session else "none"


@app.get("/keys")
def keys():
    return repr(sorted(k for k in session.keys() if k != "_permanent"))


@app.post("/set/<key>/<value>")
def set_str(key, value):
    session[key] = value
    return "ok"


@app.post("/typed")
def typed():
    """Stores one value of each type Flask apps keep in sessions, for Rust to read."""
    session["int"] = 42
    session["big"] = 2**40
    session["neg"] = -7
    session["float"] = 1.5
    session["str"] = "h\u00e9"
    session["bytes"] = b"\x00\xff"
    session["list"] = [1, "two", None, True]
    session["tuple"] = (1, 2)
    session["map"] = {"a": {"b": [1, 2]}}
    session["when"] = datetime.datetime(2024, 5, 17, 12, 30, 45, 123456, tzinfo=datetime.timezone.utc)
    return "ok"


@app.get("/ping")
def ping():
    return "pong"


if __name__ == "__main__":
    # Werkzeug's request log names paths only, but stays quiet anyway: the tests read stdout.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()

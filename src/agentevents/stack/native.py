"""The native stack without Docker, supervised by supervisord.

  PostgreSQL  127.0.0.1:5434  data in .stack/pgdata, run as the ``postgres`` user when root; roles
              ``agentevents`` (owns the database) and ``agentevents_sql`` (sql_query's, read-only)
  Redis       127.0.0.1:6381  append-only file in .stack/redis
  gateway1/2  127.0.0.1:8001, 8002
  HAProxy     127.0.0.1:8000  -> gateways (leastconn, /health checks); stats on 8404
  worker1/2   health on 127.0.0.1:8101, 8102; their http_api tool may call only 127.0.0.1:8098,
              where the specification serves its test HTTP service

``up`` returns when every process answers its health check. Fault control (kill, stop, start,
restart, pause, resume) acts on one component; supervisord restarts a killed application
process, as it would in production.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
# AE_STACK_OFFSET (a multiple of 1000) moves every port, so several stacks can run side by side.
OFFSET = int(os.environ.get("AE_STACK_OFFSET", "0"))
PG_PORT = 5434 + OFFSET
REDIS_PORT = 6381 + OFFSET
LB_PORT = 8000 + OFFSET
TLS_PORT = 8443 + OFFSET
STATS_PORT = 8404 + OFFSET
CONTROL_PORT = 8099 + OFFSET  # the control endpoint (docs/conformance.md §7), on loopback
# Where the specification serves the HTTP service its http_api scenarios call (`callbacks`): the
# one base URL the workers' http_api tool may call (AE_HTTP_ALLOWED_BASE_URLS).
CALLBACK_PORT = 8098 + OFFSET
GATEWAYS = {"gateway1": 8001 + OFFSET, "gateway2": 8002 + OFFSET}
WORKERS = {"worker1": 8101 + OFFSET, "worker2": 8102 + OFFSET}
INFRA = ("postgres", "redis")
APPS = (*GATEWAYS, *WORKERS, "haproxy")
COMPONENTS = (*INFRA, *APPS)


def stack_dir() -> Path:
    return Path(os.environ.get("AE_STACK_DIR", Path.cwd() / ".stack")).resolve()


def read_secret() -> str | None:
    path = stack_dir() / "jwt_secret"
    return path.read_text().strip() if path.exists() else None


def _secret_file(name: str, nbytes: int = 32) -> str:
    path = stack_dir() / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(nbytes))
        path.chmod(0o600)
    return path.read_text().strip()


def control_secret() -> str:
    """The bearer secret of the stack's control endpoint."""
    return _secret_file("control_secret", 32)


def database_url() -> str:
    password = _secret_file("db_password", 18)
    return f"postgresql://agentevents:{password}@{HOST}:{PG_PORT}/agentevents"


def stack_env() -> dict[str, str]:
    """What a client of the native stack needs: URLs, the JWT secret, the test CA."""
    return {
        "AE_REDIS_URL": f"redis://{HOST}:{REDIS_PORT}/0",
        "AE_DATABASE_URL": database_url(),
        "AE_JWT_SECRET": _secret_file("jwt_secret", 48),
        "AE_WS_URL": f"ws://{HOST}:{LB_PORT}/ws",
        "AE_WSS_URL": f"wss://localhost:{TLS_PORT}/ws",
        "AE_TLS_CA": str(stack_dir() / "tls" / "ca.pem"),
        "AE_HTTP_ALLOWED_BASE_URLS": callback_url(),
    }


def callback_url() -> str:
    """The base URL of the test HTTP service the stack's http_api tool may call."""
    return f"http://{HOST}:{CALLBACK_PORT}"


# Only these reach the stack's own processes.
PROCESS_ENV = ("AE_REDIS_URL", "AE_DATABASE_URL", "AE_JWT_SECRET", "AE_HTTP_ALLOWED_BASE_URLS")


def _make_certificates() -> None:
    """A private test CA and a server certificate for localhost/127.0.0.1 (HAProxy terminates TLS)."""
    folder = stack_dir() / "tls"
    if (folder / "server.pem").exists():
        return
    import trustme
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="agentevents test CA")
    cert = ca.issue_cert("localhost", HOST)
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    cert.private_key_and_cert_chain_pem.write_to_path(str(folder / "server.pem"))
    (folder / "server.pem").chmod(0o600)


def _which(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    raise SystemExit(f"{name} is not installed (see README: make spec installs what is missing)")


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass
class Paths:
    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "supervisord.conf"

    @property
    def sock(self) -> Path:
        return self.root / "supervisor.sock"

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def pgrun(self) -> Path:
        return self.root / "pgrun"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def _haproxy_cfg() -> str:
    servers = "\n".join(f"    server {name} {HOST}:{port} check" for name, port in GATEWAYS.items())
    return f"""global
    maxconn 8000

defaults
    mode http
    log global
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout client-fin 5s
    timeout http-request 10s

frontend websocket
    bind {HOST}:{LB_PORT}
    default_backend gateways

frontend websocket_tls
    bind {HOST}:{TLS_PORT} ssl crt {stack_dir() / "tls" / "server.pem"} alpn http/1.1
    default_backend gateways

backend gateways
    balance leastconn
    option httpchk GET /health
    http-check expect status 200
    # A dead gateway refuses the check at once and is out after 3 quick retries (fastinter);
    # a busy one has 1.5 s to answer each check, so a loaded gateway is not mistaken for a dead one
    # (marking it down shuts its sessions).
    timeout check 1500ms
    default-server inter 500ms fastinter 250ms downinter 500ms fall 3 rise 2 on-marked-down shutdown-sessions
{servers}

listen stats
    bind {HOST}:{STATS_PORT}
    stats enable
    stats uri /stats
"""


# When Redis compacts its append-only file: the archive outbox adds and deletes every event, so the
# file grows about twice as fast as the data. Rewrite when it is three times the size after the last
# rewrite and at least 512 MB, rather than at Redis's default (twice, 64 MB): fewer forks.
REDIS_AOF_REWRITE = ("--auto-aof-rewrite-percentage", "200", "--auto-aof-rewrite-min-size", "512mb")


def _supervisor_conf(p: Paths, env: dict[str, str]) -> str:
    py = sys.executable
    pg_user = "user=postgres\n" if os.geteuid() == 0 else ""
    common_env = ",".join(f'{k}="{env[k]}"' for k in PROCESS_ENV) + ',AE_TOKEN_GRACE_S="2"'
    postgres = (f"{_which('postgres')} -D {p.pgdata} -p {PG_PORT} -k {p.pgrun} -c listen_addresses={HOST} "
                "-c max_connections=200 -c shared_buffers=128MB")
    redis = (f"{_which('redis-server')} --port {REDIS_PORT} --bind {HOST} --dir {p.root}/redis --appendonly yes "
             f"--appendfsync always --save '' --protected-mode yes --maxclients 10000 {' '.join(REDIS_AOF_REWRITE)}")
    blocks = [f"""[unix_http_server]
file={p.sock}
chmod=0700

[supervisord]
logfile={p.logs}/supervisord.log
pidfile={p.root}/supervisord.pid
directory={p.root}
childlogdir={p.logs}
minfds=16384
user=root

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{p.sock}

[program:postgres]
command={postgres}
{pg_user}stopsignal=INT
stopwaitsecs=20
autorestart=true
priority=10
redirect_stderr=true
stdout_logfile={p.logs}/postgres.log

[program:redis]
command={redis}
autorestart=true
priority=10
redirect_stderr=true
stdout_logfile={p.logs}/redis.log
"""]
    if os.geteuid() != 0:
        blocks[0] = blocks[0].replace("user=root\n", "")
    for name, port in GATEWAYS.items():
        blocks.append(f"""[program:{name}]
command={py} -m agentevents.cli gateway
environment={common_env},AE_PORT="{port}",AE_SERVER_ID="{name}"
autostart=false
autorestart=true
startsecs=1
stopwaitsecs=5
priority=20
redirect_stderr=true
stdout_logfile={p.logs}/{name}.log
""")
    for name, port in WORKERS.items():
        blocks.append(f"""[program:{name}]
command={py} -m agentevents.cli worker --health-port {port}
environment={common_env},AE_SERVER_ID="{name}"
autostart=false
autorestart=true
startsecs=1
stopwaitsecs=15
priority=20
redirect_stderr=true
stdout_logfile={p.logs}/{name}.log
""")
    blocks.append(f"""[program:control]
command={py} -m agentevents.stack.control_server --port {CONTROL_PORT}
environment=AE_STACK_DIR="{p.root}",AE_STACK_OFFSET="{OFFSET}"
autostart=false
autorestart=true
priority=40
redirect_stderr=true
stdout_logfile={p.logs}/control.log
""")
    blocks.append(f"""[program:haproxy]
command={_which("haproxy")} -W -db -f {p.root}/haproxy.cfg
autostart=false
autorestart=true
priority=30
redirect_stderr=true
stdout_logfile={p.logs}/haproxy.log
""")
    return "\n".join(blocks)


def _ctl(p: Paths, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("supervisorctl"))
    return subprocess.run([exe, "-c", str(p.conf), *args], capture_output=True, text=True, check=check)


def supervisor_running(p: Paths) -> bool:
    if not p.sock.exists():
        return False
    result = _ctl(p, "pid", check=False)
    return result.returncode == 0 and result.stdout.strip().isdigit()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((HOST, port)) == 0


def _http_ok(port: int, path: str = "/health") -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def _redis_ok() -> bool:
    try:
        with socket.create_connection((HOST, REDIS_PORT), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _pg_ok(p: Paths) -> bool:
    pg_isready = _which("pg_isready")
    return subprocess.run([pg_isready, "-q", "-h", HOST, "-p", str(PG_PORT)], check=False).returncode == 0


def health() -> dict[str, bool]:
    p = Paths(stack_dir())
    report = {"postgres": _pg_ok(p), "redis": _redis_ok()}
    report.update({name: _http_ok(port) for name, port in GATEWAYS.items()})
    report.update({name: _http_ok(port) for name, port in WORKERS.items()})
    report["haproxy"] = _http_ok(LB_PORT)
    return report


def wait_until(check, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not become healthy within {timeout_s:g}s; see {stack_dir() / 'logs'}")


def _initdb(p: Paths) -> None:
    if (p.pgdata / "PG_VERSION").exists():
        return
    p.pgdata.mkdir(parents=True, exist_ok=True)
    p.pgdata.chmod(0o700)
    if os.geteuid() == 0:
        shutil.chown(p.pgdata, "postgres", "postgres")
    subprocess.run([*_as_postgres(), _which("initdb"), "-D", str(p.pgdata), "-U", "postgres", "-E", "UTF8",
                    "--auth-local=trust", "--auth-host=scram-sha-256", "--no-instructions"],
                   check=True, capture_output=True, text=True)


def _bootstrap_database(p: Paths, password: str) -> None:
    """Create the role and database once, over the local socket, as the postgres superuser."""
    psql = [*_as_postgres(), _which("psql"), "-h", str(p.pgrun), "-p", str(PG_PORT), "-U", "postgres", "-v",
            "ON_ERROR_STOP=1", "-qtA"]
    exists = subprocess.run([*psql, "-c", "SELECT 1 FROM pg_roles WHERE rolname='agentevents'"],
                            capture_output=True, text=True, check=True).stdout.strip()
    if not exists:
        subprocess.run([*psql, "-c", f"CREATE ROLE agentevents LOGIN PASSWORD '{password}'"], check=True,
                       capture_output=True)
        subprocess.run([*psql, "-c", "CREATE DATABASE agentevents OWNER agentevents"], check=True,
                       capture_output=True)


def _bootstrap_sql_role(p: Paths) -> None:
    """Create or refresh sql_query's read-only role as the superuser (the stack's own role may not
    create roles); the workers grant it the demo schema when they install it."""
    from ..config import derive_sql_database_url, sql_role_credentials
    from ..tools.sql import role_script
    role, password = sql_role_credentials(derive_sql_database_url(database_url()))
    psql = [*_as_postgres(), _which("psql"), "-h", str(p.pgrun), "-p", str(PG_PORT), "-U", "postgres", "-v",
            "ON_ERROR_STOP=1", "-qtA", "-d", "postgres"]
    subprocess.run(psql, input=role_script(role, password), check=True, capture_output=True, text=True)


def ensure_database(name: str) -> str:
    """A second database on the stack's PostgreSQL, owned by the stack's role (for `agentevents
    serve` beside the stack); returns its URL. The stack must be up."""
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"not a database name: {name!r}")
    p = Paths(stack_dir())
    psql = [*_as_postgres(), _which("psql"), "-h", str(p.pgrun), "-p", str(PG_PORT), "-U", "postgres", "-v",
            "ON_ERROR_STOP=1", "-qtA"]
    exists = subprocess.run([*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname='{name}'"],
                            capture_output=True, text=True, check=True).stdout.strip()
    if not exists:
        subprocess.run([*psql, "-c", f"CREATE DATABASE {name} OWNER agentevents"], check=True, capture_output=True)
    _bootstrap_sql_role(p)
    return database_url().rsplit("/", 1)[0] + f"/{name}"


def up() -> int:
    p = Paths(stack_dir())
    for d in (p.root, p.logs, p.root / "redis", p.pgrun):
        d.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(p.pgrun, "postgres", "postgres")
    env = stack_env()
    control_secret()
    _initdb(p)
    _make_certificates()
    (p.root / "haproxy.cfg").write_text(_haproxy_cfg())
    p.conf.write_text(_supervisor_conf(p, env))
    if not supervisor_running(p):
        busy = [port for port in (PG_PORT, REDIS_PORT, LB_PORT, TLS_PORT, STATS_PORT, CONTROL_PORT, *GATEWAYS.values(),
                                  *WORKERS.values())
                if _port_open(port)]
        if busy:
            raise SystemExit(f"ports already in use by something else: {busy}")
        exe = str(Path(sys.executable).with_name("supervisord"))
        subprocess.run([exe, "-c", str(p.conf)], check=True)
    else:
        _ctl(p, "reread", check=False)
        _ctl(p, "update", check=False)
    wait_until(lambda: _pg_ok(p), "postgres")
    wait_until(_redis_ok, "redis")
    _bootstrap_database(p, database_url().split(":")[2].split("@")[0])
    _bootstrap_sql_role(p)
    _ctl(p, "start", *APPS, check=False)
    for name, port in {**GATEWAYS, **WORKERS}.items():
        wait_until(lambda port=port: _http_ok(port), name)
    wait_until(lambda: _http_ok(LB_PORT), "haproxy")
    _ctl(p, "start", "control", check=False)
    wait_until(lambda: _port_open(CONTROL_PORT), "control endpoint")
    print(f"stack up: ws://{HOST}:{LB_PORT}/ws (logs in {p.logs})")
    return 0


def down() -> int:
    p = Paths(stack_dir())
    if not supervisor_running(p):
        print("stack is not running")
        return 0
    pid = int(_ctl(p, "pid").stdout.strip())
    _ctl(p, "shutdown", check=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print("stack down")
            return 0
        time.sleep(0.1)
    print("supervisord did not exit in time", file=sys.stderr)
    return 1


def status() -> int:
    p = Paths(stack_dir())
    if not supervisor_running(p):
        print("stack is not running")
        return 3
    print(_ctl(p, "status", check=False).stdout.rstrip())
    report = health()
    for name, ok in report.items():
        print(f"{name:10} {'healthy' if ok else 'UNHEALTHY'}")
    return 0 if all(report.values()) else 1


def _supervisor_pid() -> int | None:
    path = stack_dir() / "supervisord.pid"
    return int(path.read_text().strip()) if path.exists() else None


def crash(component: str) -> None:
    """Kill a component and keep it down (a real outage) until ``release_restarts``: the
    supervisor is frozen first, and restarts the component as after any crash once released."""
    victim = component_pid(component)
    pid = _supervisor_pid()
    if pid:
        os.kill(pid, signal.SIGSTOP)
    os.kill(victim, signal.SIGKILL)


def release_restarts() -> None:
    pid = _supervisor_pid()
    if pid:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def component_pid(component: str) -> int:
    """The process id of a running component (for tests that measure a process)."""
    return _pid(Paths(stack_dir()), component)


def _pid(p: Paths, component: str) -> int:
    out = _ctl(p, "pid", component, check=False).stdout.strip()
    if not out.isdigit() or out == "0":
        raise SystemExit(f"{component} is not running")
    return int(out)


def _tree(root: int) -> list[int]:
    """A process and its descendants, parents first (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    order, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        order.append(pid)
        todo.extend(children.get(pid, []))
    return order


def control(action: str, component: str) -> int:
    p = Paths(stack_dir())
    if component not in COMPONENTS:
        raise SystemExit(f"unknown component {component!r}; one of {', '.join(COMPONENTS)}")
    if action == "kill":
        os.kill(_pid(p, component), signal.SIGKILL)
    elif action == "pause":
        # The whole process tree: a PostgreSQL backend (own session) keeps answering otherwise.
        for pid in _tree(_pid(p, component)):
            os.kill(pid, signal.SIGSTOP)
    elif action == "resume":
        for pid in reversed(_tree(_pid(p, component))):
            os.kill(pid, signal.SIGCONT)
    else:
        result = _ctl(p, action, component, check=False)
        print(result.stdout.rstrip())
        if result.returncode != 0 and "ALREADY" not in result.stdout:
            return 1
    return 0


def main(action: str, component: str | None) -> int:
    if action in ("up", "down", "status"):
        return {"up": up, "down": down, "status": status}[action]()
    if action == "logs":
        print(stack_dir() / "logs")
        return 0
    if not component:
        raise SystemExit(f"stack {action} needs a component: {', '.join(COMPONENTS)}")
    return control(action, component)

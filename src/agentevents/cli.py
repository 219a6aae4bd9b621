"""agentevents: run a gateway or a worker, the whole native stack, test tokens, the agent list, and the
behave specification."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from . import logs
from .config import Settings


def _run(coro: Any) -> None:
    import uvloop
    uvloop.run(coro)


def _settings_with_secret() -> Settings:
    """Settings, taking the JWT secret of a running native stack when none is configured."""
    if not os.environ.get("AE_JWT_SECRET"):
        from .stack.native import read_secret
        secret = read_secret()
        if secret:
            os.environ["AE_JWT_SECRET"] = secret
    return Settings()


def cmd_gateway(args: argparse.Namespace) -> None:
    if args.port:
        os.environ["AE_PORT"] = str(args.port)
    settings = Settings()
    logs.setup(settings.log_level, "gateway")
    from .gateway.server import run_gateway
    _run(run_gateway(settings))


def cmd_worker(args: argparse.Namespace) -> None:
    settings = Settings()
    logs.setup(settings.log_level, "worker")
    from .worker.service import run_worker
    _run(run_worker(settings, args.health_port))


def cmd_serve(args: argparse.Namespace) -> None:
    """Gateway and worker in one process, for small setups."""
    settings = Settings()
    logs.setup(settings.log_level, "serve")
    from .gateway.server import run_gateway
    from .worker.service import run_worker

    async def both() -> None:
        await asyncio.gather(run_gateway(settings), run_worker(settings, args.health_port))

    _run(both())


def cmd_agents(_args: argparse.Namespace) -> None:
    from .agents.registry import default_registry
    for spec in default_registry().specs():
        perm = f"  [needs {spec.permission}]" if spec.permission else ""
        tools = f"  tools: {', '.join(spec.tools)}" if spec.tools else ""
        print(f"{spec.name:14} {spec.description}{perm}{tools}")


def cmd_token(args: argparse.Namespace) -> None:
    from .auth import issue_token
    settings = _settings_with_secret()
    if settings.jwt_algorithm.startswith("HS") and not settings.jwt_secret:
        sys.exit("agentevents token: no signing secret: the native stack is not up (agentevents stack up) "
                 "and AE_JWT_SECRET is not set")
    perms = [p for p in (args.permissions or "").split(",") if p]
    print(issue_token(args.user, key=settings.jwt_secret or settings.verification_key(),
                      algorithm=settings.jwt_algorithm, issuer=settings.jwt_issuer,
                      audience=settings.jwt_audience, permissions=perms, tier=args.tier, ttl_s=args.ttl))


def cmd_revoke(args: argparse.Namespace) -> None:
    """Revoke one token (by jti) or every token of a user; gateways close their open connections."""
    from redis.exceptions import RedisError

    from . import revocation
    from .bus import connect
    from .stack import native
    url = os.environ.get("AE_REDIS_URL") or f"redis://{native.HOST}:{native.REDIS_PORT}/0"

    async def go() -> None:
        redis = connect(url)
        try:
            await revocation.revoke(redis, jti=args.jti, user_id=args.user, ttl_s=args.ttl)
        finally:
            await redis.aclose()

    try:
        asyncio.run(go())
    except (RedisError, OSError) as exc:
        sys.exit(f"agentevents revoke: Redis at {url} did not answer: {exc}")
    print(f"revoked {'token ' + args.jti if args.jti else 'user ' + args.user} for {args.ttl} s")


def cmd_stack(args: argparse.Namespace) -> None:
    from .stack import native
    sys.exit(native.main(args.action, args.component))


def cmd_migrate(_args: argparse.Namespace) -> None:
    from . import store

    async def go() -> None:
        pool = await store.create_pool(Settings().database_url)
        async with pool.acquire() as conn:
            for name in await store.migrate(conn):
                print("applied", name)
        await pool.close()

    _run(go())


def cmd_spec(args: argparse.Namespace) -> None:
    from .testing import runner
    from .testing.runner import run_spec
    runner.REPORTS = Path(args.reports)
    userdata = {}
    for item in args.define:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"agentevents spec: -D takes NAME=VALUE, not {item!r}", file=sys.stderr)
            sys.exit(2)
        userdata[key] = value
    if args.target:
        userdata["target"] = args.target
    sys.exit(run_spec(tags=args.tags, workers=args.workers, stack=userdata.pop("stack", args.stack),
                      extra=args.behave_args, allow_empty=args.allow_empty, userdata=userdata))


def cmd_chaos(args: argparse.Namespace) -> None:
    from .chaos.run import ChaosError, Options, main
    options = Options(runs=args.runs, duration_s=args.duration, faults=args.faults, concurrency=args.concurrency,
                      users=args.users, seed=args.seed, report=Path(args.report) if args.report else None)
    try:
        sys.exit(main(options))
    except ChaosError as exc:
        print(f"agentevents chaos: {exc}", file=sys.stderr)
        sys.exit(2)


def cmd_fuzz(args: argparse.Namespace) -> None:
    from .fuzz import command
    sys.exit(command(args))


def _positive(kind: type) -> object:
    def parse(text: str) -> object:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not positive")
        return value
    parse.__name__ = kind.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentevents", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("gateway", help="run a WebSocket gateway")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: AE_PORT)")
    p.set_defaults(func=cmd_gateway)
    health_help = "port of the worker's /health and /metrics endpoint (default: AE_HEALTH_PORT; 0 = none)"
    p = sub.add_parser("worker", help="run an agent worker")
    p.add_argument("--health-port", type=int, default=int(os.environ.get("AE_HEALTH_PORT", "0")), help=health_help)
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("serve", help="gateway and worker in one process")
    p.add_argument("--health-port", type=int, default=int(os.environ.get("AE_HEALTH_PORT", "0")), help=health_help)
    p.set_defaults(func=cmd_serve)
    sub.add_parser("agents", help="list the agents").set_defaults(func=cmd_agents)
    p = sub.add_parser("token", help="print a JWT for the running stack")
    p.add_argument("--user", required=True, help="the user id (the token's sub claim)")
    p.add_argument("--permissions", default="", help="comma-separated permissions, e.g. agents:scripted")
    p.add_argument("--tier", default="free", choices=["free", "early", "mid", "enterprise"],
                   help="the user's tier (default: free)")
    p.add_argument("--ttl", type=float, default=3600, help="seconds until the token expires (default: 3600)")
    p.set_defaults(func=cmd_token)
    p = sub.add_parser("revoke", help="revoke a token or a user: refused at the handshake, open connections closed")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--jti", help="the token's jti claim")
    which.add_argument("--user", help="a user id (sub): every token of this user")
    p.add_argument("--ttl", type=int, default=3600,
                   help="seconds the revocation lasts; at least the tokens' remaining lifetime (default: 3600)")
    p.set_defaults(func=cmd_revoke)
    p = sub.add_parser("stack", help="the native stack: up, down, status, and fault control")
    p.add_argument("action", choices=["up", "down", "status", "kill", "stop", "start", "restart", "pause",
                                      "resume", "logs"], help="what to do")
    p.add_argument("component", nargs="?", help="for fault control: postgres, redis, gateway1, worker1, haproxy …")
    p.set_defaults(func=cmd_stack)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    p = sub.add_parser("spec", help="run the behave specification, sharded, and write one report")
    p.add_argument("--tags", action="append", default=[],
                   help="behave tag expression selecting scenarios, e.g. @T042 or 'not @slow' (repeat: all must hold)")
    p.add_argument("--workers", type=int, default=2, help="behave processes for the scenarios that share the stack")
    p.add_argument("--target", metavar="PROFILE.toml",
                   help="the target profile (default: features/targets/native.toml; see features/targets/example.toml)")
    p.add_argument("--stack", choices=["native", "docker", "external"],
                   help="override the profile's stack: native/docker are started if not up, external is only reached")
    p.add_argument("-D", "--define", action="append", default=[], metavar="NAME=VALUE",
                   help="behave userdata for the target, e.g. -D ws_url=wss://host/ws -D jwt_secret=...")
    p.add_argument("--allow-empty", action="store_true", help="accept a selection that matches no scenario")
    p.add_argument("--reports", default="reports", metavar="DIR",
                   help="where the report, records, JUnit and logs go (default: reports)")
    p.add_argument("behave_args", nargs=argparse.REMAINDER, help="after --: further arguments for behave")
    p.set_defaults(func=cmd_spec)
    p = sub.add_parser("chaos", help="runs under a random fault schedule, then a history checker (native stack)",
                       description="Conformance-agent runs through HAProxy while gateways and workers are killed, "
                                   "Redis and PostgreSQL restarted or paused and client connections cut; then "
                                   "every thread is checked: gapless seqs, one id and one text per seq, order per "
                                   "connection, no event of another user, exactly one agent_completed per accepted "
                                   "run, and the archive equal to what the clients received. Needs the native "
                                   "stack up (agentevents stack up); exits 1 on any violation.")
    p.add_argument("--runs", type=_positive(int), default=200, help="runs to start (default: 200)")
    p.add_argument("--duration", type=_positive(float), default=60.0,
                   help="seconds over which runs start and faults fall (default: 60)")
    p.add_argument("--faults", type=_positive(int), default=10, help="faults to inject (default: 10)")
    p.add_argument("--concurrency", type=_positive(int), default=12, help="sessions at a time (default: 12)")
    p.add_argument("--users", type=_positive(int), default=8, help="distinct users (default: 8)")
    p.add_argument("--seed", type=int, default=1, help="seed of the fault schedule and the scripts (default: 1)")
    p.add_argument("--report", metavar="PATH", help="write the summary and verdict as JSON here")
    p.set_defaults(func=cmd_chaos)
    p = sub.add_parser("fuzz", help="hostile frames through HAProxy while a canary's runs stay intact (native stack)",
                       description="Sends seeded hostile frames of every kind (random bytes, invalid UTF-8 and JSON, "
                                   "wrong fields and numbers, huge and deep values, frames at the size limits, bad "
                                   "tokens, other users' threads and runs, floods) from several connections through "
                                   "HAProxy, each followed by an in-order ping barrier, and checks every answer "
                                   "against docs/protocol.md: a documented error code or close code, never 1011, "
                                   "never silence, never an answer to a frame that must be refused. Meanwhile a "
                                   "canary user's math and scripted runs must complete gapless and in order, no "
                                   "gateway or worker may restart (process ids through supervisord) nor log a "
                                   "traceback: native stack only, AE_STACK_OFFSET and AE_STACK_DIR select it; "
                                   "loopback only. Exits 0 "
                                   "without violations, 1 with any, 2 for a usage error or a stack not up.")
    p.add_argument("--frames", type=_positive(int), default=10000, help="frames to send (default: 10000)")
    p.add_argument("--connections", type=_positive(int), default=4,
                   help="fuzz connections at a time; each is reopened when the gateway closes it (default: 4)")
    p.add_argument("--seed", type=int, help="seed of the frames (default: a random one, printed and in the report)")
    p.add_argument("--duration-max", type=_positive(float), default=300.0,
                   help="seconds after which the run stops by itself, sent or not (default: 300)")
    p.add_argument("--url", help="the WebSocket URL, on loopback (default: the native stack's HAProxy, "
                                 "ws://127.0.0.1:<8000+AE_STACK_OFFSET>/ws)")
    p.add_argument("--report", metavar="PATH", default="reports/fuzz.json",
                   help="where the JSON report goes (default: reports/fuzz.json)")
    p.add_argument("--canaries", type=_positive(int), default=2, help="canary connections running runs (default: 2)")
    p.add_argument("--start-bound", type=_positive(float), default=2.0,
                   help="seconds a canary run may take from run_accepted to agent_started (default: 2)")
    p.add_argument("--kinds", help="comma-separated frame kinds to send (default: all; the summary lists them)")
    p.set_defaults(func=cmd_fuzz)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()

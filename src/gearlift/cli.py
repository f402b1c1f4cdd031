"""gearlift command line: the local rehearsal and its housekeeping."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType

from gearlift.twin.errors import TwinError
from gearlift.twin.twin import REPO_ROOT, Twin, TwinConfig, clean
from gearlift.vm import VMError


def _say(line: str) -> None:
    print(line, flush=True)


class _Interrupt:
    """SIGINT/SIGTERM: before the playbook starts, abort; during it, cancel it.

    Cancelling through ansible-runner's cancel callback lets it stop the
    ansible-playbook process it started (raising inside the runner would
    leave that process behind).
    """

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.in_playbook = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.cancel.set()
        if not self.in_playbook:
            raise KeyboardInterrupt


def cmd_rehearse(args: argparse.Namespace) -> int:
    from gearlift.twin.runner import run_playbook

    t0 = time.monotonic()
    config = _twin_config(args)
    twin = Twin(config, log=_say)
    interrupt = _Interrupt()
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    result = None
    interrupted = False
    try:
        twin.up()
        twin.start_loop()
        _build_standin(twin)
        inventories = list(args.inventory)
        if args.onprem:
            inventories.append(str(twin.onprem_up().inventory))
        extravars = dict(kv.split("=", 1) for kv in args.extra_vars)
        for index, playbook in enumerate(args.playbook):
            if index:
                _wait_for_databases(twin)
            interrupt.in_playbook = True
            result = run_playbook(
                REPO_ROOT,
                playbook,
                inventories,
                config.state_dir / f"runner-{index}",
                twin.aws_env,
                _say,
                extravars=extravars,
                tags=args.tags,
                cancel=interrupt.cancel,
            )
            interrupt.in_playbook = False
            if not result.ok or interrupt.cancel.is_set():
                break
        if twin.error is not None:
            _say(f"twin error during the run: {twin.error}")
        if (result is not None and result.status == "canceled") or interrupt.cancel.is_set():
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        _say("interrupted: tearing the twin down")
        interrupted = True
    except TwinError as exc:
        _say(f"error: {exc}")
        return 2
    finally:
        summary = twin.summary() if twin.layout.endpoints_file.exists() else {}
        twin.down()
    totals = result.totals() if result else {}
    _say("")
    _say("== rehearsal summary ==")
    _say(f"playbook : {', '.join(args.playbook)} ({result.status if result else 'not run'})")
    _say(f"hosts    : {', '.join(result.hosts()) if result else '-'}")
    _say(
        f"tasks    : ok={totals.get('ok', 0)} changed={totals.get('changed', 0)} "
        f"failed={totals.get('failures', 0)} unreachable={totals.get('dark', 0)} skipped={totals.get('skipped', 0)}"
    )
    _say(
        f"twin     : {len(summary.get('load_balancers', {}))} load balancer(s), "
        f"{len(summary.get('databases', {}))} database(s) at the end"
    )
    _say(f"time     : {time.monotonic() - t0:.1f} s (playbook {result.seconds if result else 0:.1f} s)")
    if result and result.failures:
        _say("failures :")
        for line in result.failures:
            _say(f"  - {line}")
    ok = bool(result and result.ok and twin.error is None)
    _say("result   : " + ("INTERRUPTED" if interrupted else "PASSED" if ok else "FAILED"))
    if interrupted:
        return 130
    return 0 if ok else 1


def _twin_config(args: argparse.Namespace) -> TwinConfig:
    """The twin of `gearlift rehearse`: .twin/ for the default prefix, .twin/<prefix>/ for another."""
    default = TwinConfig()
    state_dir = default.state_dir if args.twin_prefix == default.prefix else default.state_dir / args.twin_prefix
    return TwinConfig(
        prefix=args.twin_prefix,
        subnet=args.twin_subnet,
        state_dir=state_dir,
        moto_port=args.moto_port,
        region=args.region,
    )


def cmd_story(args: argparse.Namespace) -> int:
    """`gearlift rehearse` without --playbook: the whole story (gearlift.story), ending with the scoreboard."""
    from gearlift.story.phases import SelectionError, select
    from gearlift.story.runner import Story, execute

    try:
        plan = select(args.only, args.start, args.until)
    except SelectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if plan.prerequisites:
        _say(
            f"the twin starts empty: running {', '.join(plan.prerequisites)} first "
            f"(needed by {', '.join(plan.selected)})"
        )
    config = _twin_config(args)
    state_dir = config.state_dir
    twin = Twin(config, log=_say)
    interrupt = _Interrupt()
    interrupt.in_playbook = True  # the story checks the cancel event between its steps
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    summary_path = REPO_ROOT / "reports" / "rehearsal" / "summary.json"
    try:
        twin.up()
        twin.start_loop()
        _build_standin(twin)
        story = Story(twin=twin, repo=REPO_ROOT, plan=plan, log=_say, cancel=interrupt.cancel, work=state_dir / "story")
        summary = execute(story, summary_path=summary_path)
    except TwinError as exc:
        _say(f"error: {exc}")
        return 2
    finally:
        if twin.error is not None:
            _say(f"twin error during the run: {twin.error}")
        twin.down()
    if summary.get("interrupted"):
        return 130
    return 0 if summary["result"] == "passed" else 1


def _build_standin(twin: Twin) -> bool:
    """The rehearsal's app artifact (the stand-in shop) for playbooks/bake_ami.yml: built when javac is there.

    build.sh reads its settings from this process's environment (``SHOP_WORK_CPU_US``: scripts/bench-peak
    sets it for every build of its run). True when it was built.
    """
    import shutil
    import subprocess

    if shutil.which("javac") is None:
        twin.log("javac is missing: the stand-in shop is not built (playbooks/bake_ami.yml needs it)")
        return False
    build = subprocess.run(
        [str(REPO_ROOT / "app" / "shop-standin" / "build.sh")], capture_output=True, text=True, check=False
    )
    if build.returncode != 0:
        twin.log(f"building the stand-in shop failed: {build.stderr.strip()[-400:]}")
        return False
    return True


def _wait_for_databases(twin: Twin, timeout: float = 240) -> None:
    """Before the next playbook: every RDS instance of the control plane accepts logins."""
    assert twin.clients is not None
    ids = {d["DBInstanceIdentifier"] for d in twin.clients("rds").describe_db_instances()["DBInstances"]}
    twin.wait_for(lambda: ids <= set(twin.endpoints.databases), timeout, f"database(s) {sorted(ids)} to accept logins")


def cmd_report(args: argparse.Namespace) -> int:
    from gearlift.report.__main__ import run
    from gearlift.report.errors import ReportError

    try:
        return run(args)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def cmd_clean(args: argparse.Namespace) -> int:
    removed = clean(TwinConfig(prefix=args.prefix), log=_say, account_images=args.images)
    _say(f"{len(removed)} item(s) removed" if removed else "nothing to clean")
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    from gearlift.twin import images

    for name in (
        images.ensure_base_image(_say),
        images.ensure_mariadb_image(_say),
        images.ensure_apphost_image(_say),
        images.ensure_redis_image(_say),
    ):
        _say(f"ready: {name}")
    return 0


def cmd_vm_image(args: argparse.Namespace) -> int:
    from gearlift import vm

    image = vm.build_image(log=_say, force=args.rebuild)
    _say(f"ready: {image.image} (kernel {image.kernel.name}, key {image.key})")
    return 0


def cmd_vm_up(args: argparse.Namespace) -> int:
    from gearlift import vm

    run_dir = vm.default_cache_dir() / "run"
    if vm.stop_recorded(run_dir):
        _say("stopped a VM an earlier `gearlift vm up` left running")
    image = vm.build_image(log=_say)
    stop = threading.Event()

    def _handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    with vm.VM(image, run_dir, memory_mb=args.memory, log=_say) as machine:
        _say(f"inventory: {machine.inventory}")
        _say(f"ssh: ssh {' '.join(machine.ssh_options())} {vm.ADMIN_USER}@127.0.0.1")
        _say("VM running; Ctrl-C (or `gearlift vm down`) stops it")
        while not stop.wait(1.0):
            if not machine.alive():
                if not machine.pid_file.exists():  # qemu removes it on a clean quit (`gearlift vm down`)
                    _say("the VM was stopped from outside")
                    return 0
                _say(f"qemu exited; serial log: {machine.serial_log}")
                return 1
        _say("stopping the VM")
    return 0


def cmd_vm_down(args: argparse.Namespace) -> int:
    from gearlift import vm

    stopped = vm.stop_recorded(vm.default_cache_dir() / "run")
    _say("VM stopped" if stopped else "no VM running")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gearlift", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    reh = sub.add_parser(
        "rehearse", help="the whole migration against the local twin (the story), or given playbooks (--playbook)"
    )
    reh.add_argument(
        "--playbook",
        action="append",
        default=None,
        help="playbook to run instead of the story (repeatable, run in order against the same twin)",
    )
    reh.add_argument(
        "--onprem",
        action="store_true",
        help="also start the shop's estate as it runs today (onprem-db, onprem-app) for playbooks/migrate_db.yml",
    )
    reh.add_argument(
        "--inventory",
        action="append",
        default=None,
        help="inventory path relative to the repo (repeatable; default inventories/rehearsal)",
    )
    story = reh.add_argument_group(
        "the story (without --playbook)",
        "estate, provision, bake, deploy, move, cutover, patch, restore_drill, report; "
        "phases a selected one stands on run first (the twin starts empty)",
    )
    story.add_argument("--only", default=None, metavar="PHASE[,PHASE]", help="run only these phases")
    story.add_argument("--from", dest="start", default=None, metavar="PHASE", help="start the story at this phase")
    story.add_argument("--until", default=None, metavar="PHASE", help="end the story after this phase")
    reh.add_argument(
        "--twin-prefix", default=TwinConfig().prefix, help="name prefix of the twin's containers and network"
    )
    reh.add_argument("--twin-subnet", default=TwinConfig().subnet, help="IPv4 subnet of the twin's podman network")
    reh.add_argument("--region", default="us-east-1")
    reh.add_argument("--moto-port", type=int, default=None, help="port for the AWS emulator (default: a free one)")
    reh.add_argument("--tags", default=None)
    reh.add_argument("-e", "--extra-vars", action="append", default=[], metavar="KEY=VALUE")
    reh.set_defaults(func=cmd_rehearse)
    from gearlift.report.__main__ import add_arguments as report_arguments

    rep = sub.add_parser("report", help="solution design / PCI evidence report from an inventory (no AWS call)")
    report_arguments(rep)
    rep.set_defaults(func=cmd_report)
    twin = sub.add_parser("twin", help="twin housekeeping")
    twin_sub = twin.add_subparsers(dest="twin_command", required=True)
    cln = twin_sub.add_parser("clean", help="remove containers, network and processes an earlier twin left")
    cln.add_argument("--prefix", default="gearlift-twin")
    cln.add_argument(
        "--images",
        action="store_true",
        help="also remove the golden images the account keeps between rehearsals (the next bake starts over)",
    )
    cln.set_defaults(func=cmd_clean)
    img = twin_sub.add_parser("images", help="build the cached test-host images")
    img.set_defaults(func=cmd_images)
    vmp = sub.add_parser("vm", help="the qemu VM test host (auditd, sysctl, mounts, AIDE, AppArmor)")
    vm_sub = vmp.add_subparsers(dest="vm_command", required=True)
    vm_img = vm_sub.add_parser("image", help="build the VM image (cached; rebuilt when its recipe changes)")
    vm_img.add_argument("--rebuild", action="store_true", help="rebuild even when the cached image is current")
    vm_img.set_defaults(func=cmd_vm_image)
    vm_up = vm_sub.add_parser("up", help="boot the VM, print its Ansible inventory, run until Ctrl-C")
    vm_up.add_argument("--memory", type=int, default=1536, help="guest memory in MB (default 1536)")
    vm_up.set_defaults(func=cmd_vm_up)
    vm_down = vm_sub.add_parser("down", help="stop the VM `gearlift vm up` started")
    vm_down.set_defaults(func=cmd_vm_down)
    return parser


def _twin_arguments_problem(prefix: str, subnet: str) -> str:
    """Why --twin-prefix/--twin-subnet cannot be used ('' when they can)."""
    import ipaddress
    import re

    if not re.fullmatch(r"[a-z][a-z0-9-]{1,30}", prefix):
        return f"--twin-prefix {prefix!r}: lower-case letters, digits and '-', starting with a letter (2-31 chars)"
    try:
        net = ipaddress.ip_network(subnet)
    except ValueError as exc:
        return f"--twin-subnet {subnet!r}: {exc}"
    if net.version != 4 or net.prefixlen > 28:
        return f"--twin-subnet {subnet}: an IPv4 network of at least /28"
    return ""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "rehearse":
        problem = _twin_arguments_problem(args.twin_prefix, args.twin_subnet)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        if args.playbook is None:
            if args.inventory or args.tags or args.onprem or args.extra_vars:
                print(
                    "error: --inventory, --tags, --onprem and -e go with --playbook; the story runs "
                    "every playbook with the rehearsal inventory",
                    file=sys.stderr,
                )
                return 2
            args.func = cmd_story
        elif args.only or args.start or args.until:
            print("error: --only/--from/--until select phases of the story: not with --playbook", file=sys.stderr)
            return 2
        args.inventory = args.inventory or ["inventories/rehearsal"]
    for kv in getattr(args, "extra_vars", []):
        if "=" not in kv:
            print(f"error: -e expects KEY=VALUE, got {kv!r}", file=sys.stderr)
            return 2
    try:
        return int(args.func(args))
    except (TwinError, VMError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

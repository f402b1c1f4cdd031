"""The story runner without a twin: phase selection, the verdict, the scoreboard's schema, the traffic loops."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest

from gearlift import cli
from gearlift.story import phases, scoreboard
from gearlift.story.phases import PHASES, SelectionError, select
from gearlift.story.runner import STEPS, PhaseFailed, Story, execute
from gearlift.story.scoreboard import PhaseRecord, PlaybookRun, Scoreboard, build, schema_problems
from gearlift.story.traffic import OrderLoop, Probe, Target
from gearlift.twin.twin import Twin

# ---------------------------------------------------------------------- selection


def test_no_option_selects_the_whole_story_in_order() -> None:
    plan = select()
    assert plan.phases == PHASES == tuple(STEPS)
    assert plan.prerequisites == ()


def test_until_ends_the_story_there() -> None:
    plan = select(until="deploy")
    assert plan.phases == ("estate", "provision", "bake", "deploy")
    assert plan.skipped() == ("move", "cutover", "patch", "restore_drill", "report")


def test_only_brings_what_the_phase_stands_on_first() -> None:
    plan = select(only="patch")
    assert plan.selected == ("patch",)
    assert plan.prerequisites == ("provision", "bake", "deploy")
    assert plan.phases == ("provision", "bake", "deploy", "patch")


def test_only_several_phases_run_in_story_order_whatever_the_order_given() -> None:
    plan = select(only="report,estate, Restore-Drill")
    assert plan.selected == ("estate", "restore_drill", "report")
    assert plan.phases == ("estate", "provision", "restore_drill", "report")


def test_from_cutover_brings_the_move_and_its_ground() -> None:
    plan = select(start="cutover", until="cutover")
    assert plan.phases == ("estate", "provision", "move", "cutover")
    assert plan.prerequisites == ("estate", "provision", "move")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"only": "bogus"}, "--only: unknown phase 'bogus'; the phases are estate, provision"),
        ({"only": "deploy,nope"}, "--only: unknown phase 'nope'"),
        ({"only": " , "}, "--only: no phase given"),
        ({"start": "restore"}, "--from: unknown phase 'restore'"),
        ({"until": "migrate"}, "--until: unknown phase 'migrate'"),
        ({"start": "patch", "until": "bake"}, "--from patch comes after --until bake"),
        ({"only": "bake", "until": "deploy"}, "--only cannot be combined"),
    ],
)
def test_bad_selection_is_named(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(SelectionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        select(**kwargs)


def test_every_requirement_names_an_earlier_phase() -> None:
    assert set(phases.REQUIRES) == set(PHASES)
    for name, needs in phases.REQUIRES.items():
        assert all(PHASES.index(n) < PHASES.index(name) for n in needs), name


def test_cli_refuses_bad_options_before_any_twin(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["rehearse", "--only", "bogus"]) == 2
    assert "unknown phase 'bogus'" in capsys.readouterr().err
    assert cli.main(["rehearse", "--playbook", "site.yml", "--until", "bake"]) == 2
    assert "not with --playbook" in capsys.readouterr().err
    assert cli.main(["rehearse", "--tags", "network"]) == 2
    assert "go with --playbook" in capsys.readouterr().err


# ---------------------------------------------------------------------- verdict and scoreboard


def _measured_board(**override: Any) -> Scoreboard:
    board = Scoreboard()
    values: dict[str, Any] = {
        "orders_confirmed": 812,
        "orders_lost": 0,
        "read_only_window_s": 4.2,
        "rpo_s": 31.0,
        "rto_s": 95.5,
        "shop_status_through_alb": 200,
        "monthly_cost_usd": 186.6,
        "failed_requests.deploy": 0,
        "failed_requests.patch": 0,
        "failed_requests.cutover": 9,
        "audit.pass": 120,
        "audit.fail": 0,
        "audit.skipped": 7,
        "uploads_confirmed": 40,
        "uploads_lost": 0,
        "carts_lost": 0,
        "carts_left_at_switch": 2,
    }
    values.update(override)
    for key, value in values.items():
        board.measure(key, value)
    return board


def _passed(*names: str) -> list[PhaseRecord]:
    return [PhaseRecord(name=n, status="passed", seconds=10.0) for n in names]


def test_everything_kept_and_the_shop_serving_passes() -> None:
    summary = build(_measured_board(), _passed(*PHASES), 1200.0, alb_required=True)
    assert summary["result"] == "passed", summary["verdict_reasons"]
    assert schema_problems(summary) == []


def test_a_lost_order_fails_the_run() -> None:
    summary = build(_measured_board(orders_lost=1), _passed(*PHASES), 1200.0, alb_required=True)
    assert summary["result"] == "failed"
    assert any("orders_lost = 1" in r for r in summary["verdict_reasons"])


def test_a_lost_upload_fails_the_run() -> None:
    summary = build(_measured_board(uploads_lost=2), _passed(*PHASES), 1200.0, alb_required=True)
    assert summary["result"] == "failed"
    assert any("uploads_lost = 2" in r for r in summary["verdict_reasons"])


def test_lost_carts_are_shown_but_are_not_a_lost_sale() -> None:
    summary = build(_measured_board(carts_lost=3), _passed(*PHASES), 1200.0, alb_required=True)
    assert summary["result"] == "passed", summary["verdict_reasons"]
    assert summary["carts_lost"] == 3
    lines = scoreboard.render(summary)
    assert any(line.startswith("carts_lost") and line.endswith(": 3") for line in lines)
    # the legacy shop's carts at the name switch are shown apart from what the new platform lost
    assert summary["carts_left_at_switch"] == 2
    assert any(line.startswith("carts_left_at_switch") and line.endswith(": 2") for line in lines)
    order = [line.split(":")[0].strip() for line in lines]
    assert order.index("read_only_window_s") + 1 == order.index("failed_requests")


def test_a_failed_phase_fails_the_run() -> None:
    records = [*_passed("estate", "provision"), PhaseRecord(name="bake", status="failed", error="boot test")]
    summary = build(_measured_board(), records, 600.0, alb_required=True)
    assert summary["result"] == "failed"
    assert "phase bake failed: boot test" in summary["verdict_reasons"]


@pytest.mark.parametrize("status", [503, 502, None])
def test_the_shop_not_answering_200_through_the_alb_fails_the_run(status: int | None) -> None:
    board = _measured_board()
    if status is None:
        board.missing("shop_status_through_alb", "no ALB answered")
    else:
        board.measure("shop_status_through_alb", status)
    summary = build(board, _passed(*PHASES), 1200.0, alb_required=True)
    assert summary["result"] == "failed"
    assert any("through the ALB" in r for r in summary["verdict_reasons"])
    assert schema_problems(summary) == []


def test_a_run_without_deploy_does_not_require_the_alb_but_reports_it() -> None:
    board = _measured_board(shop_status_through_alb=503)
    summary = build(board, _passed("estate", "provision"), 300.0, alb_required=False)
    assert summary["result"] == "passed", summary["verdict_reasons"]
    assert summary["shop_status_through_alb"] == 503


def test_orders_that_could_not_be_counted_fail_a_run_with_the_estate() -> None:
    board = _measured_board()
    board.missing("orders_lost", "the database could not be read")
    summary = build(board, _passed(*PHASES), 1200.0, alb_required=True)
    assert summary["result"] == "failed"


def test_scoreboard_has_every_required_key_and_nulls_only_with_a_reason() -> None:
    summary = build(Scoreboard(), [], 1.0, alb_required=False)
    for key in scoreboard.REQUIRED_KEYS:
        assert key in summary, key
    assert set(summary["failed_requests"]) == {"deploy", "patch", "cutover"}
    assert set(summary["audit"]) == {"pass", "fail", "skipped"}
    assert set(summary["phase_seconds"]) == set(PHASES)
    assert schema_problems(summary) == []
    nulls = {e["key"] for e in summary["not_measured"]}
    assert {"orders_lost", "rpo_s", "audit.fail", "phase_seconds.report"} <= nulls
    assert all(e["why"] for e in summary["not_measured"])
    json.dumps(summary)  # serialisable as is


def test_schema_problems_catch_a_null_without_reason_and_a_missing_key() -> None:
    summary = build(_measured_board(), _passed(*PHASES), 1200.0, alb_required=True)
    summary["rto_s"] = None
    summary["failed_requests"]["patch"] = None
    del summary["carts_lost"]
    problems = schema_problems(summary)
    assert "rto_s is null without a not_measured entry saying why" in problems
    assert "failed_requests.patch is null without a not_measured entry saying why" in problems
    assert "missing key carts_lost" in problems


def test_measuring_none_is_refused_and_a_reason_is_required() -> None:
    board = Scoreboard()
    with pytest.raises(ValueError, match="cannot be None"):
        board.measure("rpo_s", None)
    with pytest.raises(ValueError, match="say why"):
        board.missing("rpo_s", " ")


# ---------------------------------------------------------------------- the runner with fake phases


class FakeStory(Story):
    """A story whose end measurements are given (no twin)."""

    final: dict[str, Any]

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        for key, value in self.final.items():
            self.board.measure(key, value)


def _story(plan: phases.Plan, **final: Any) -> FakeStory:
    story = FakeStory(twin=cast(Twin, object()), repo=Path("."), plan=plan, log=lambda _line: None)
    story.final = {
        "orders_confirmed": 10,
        "orders_lost": 0,
        "uploads_confirmed": 4,
        "uploads_lost": 0,
        "carts_lost": 0,
        "carts_left_at_switch": 0,
        "shop_status_through_alb": 200,
        **final,
    }
    return story


def _steps(calls: list[str], fail: str | None = None) -> dict[str, Callable[[Story], None]]:
    def make(name: str) -> Callable[[Story], None]:
        def step(story: Story) -> None:
            calls.append(name)
            if name in ("deploy", "patch"):
                story.current.playbooks.append(PlaybookRun(name + ".yml", None, "successful", 1.0, ok=3, changed=1))
            if name == "restore_drill":
                story.current.playbooks.append(PlaybookRun("restore_drill.yml", None, "successful", 1.0, ok=5))
                story.current.playbooks.append(
                    PlaybookRun("restore_drill.yml", None, "failed" if fail == name else "successful", 2.0, failed=1)
                )
            if name == fail:
                raise PhaseFailed(f"{name} broke")

        return step

    return {name: make(name) for name in PHASES}


def test_a_failed_phase_skips_the_rest_and_the_scoreboard_is_still_written(tmp_path: Path) -> None:
    calls: list[str] = []
    out = tmp_path / "reports" / "rehearsal" / "summary.json"
    summary = execute(_story(select()), steps=_steps(calls, fail="restore_drill"), summary_path=out)
    assert calls == list(PHASES[: PHASES.index("restore_drill") + 1])
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["result"] == "failed"
    statuses = {p["name"]: p["status"] for p in written["phases"]}
    assert statuses["restore_drill"] == "failed" and statuses["report"] == "skipped"
    assert written["phase_seconds"]["report"] is None
    assert {"key": "phase_seconds.report", "why": "not run: an earlier phase failed or was interrupted"} in written[
        "not_measured"
    ]
    # both playbooks of the phase, each with its own totals
    drill = next(p for p in written["phases"] if p["name"] == "restore_drill")
    assert [(r["ok"], r["failed"]) for r in drill["playbooks"]] == [(5, 0), (0, 1)]
    assert schema_problems(written) == []
    assert summary == written


def test_a_clean_story_passes_and_times_every_phase(tmp_path: Path) -> None:
    calls: list[str] = []
    ticks = iter(range(0, 1000, 5))
    summary = execute(
        _story(select()), steps=_steps(calls), summary_path=tmp_path / "s.json", clock=lambda: float(next(ticks))
    )
    assert calls == list(PHASES)
    assert summary["result"] == "passed", summary["verdict_reasons"]
    assert all(summary["phase_seconds"][p] == 5.0 for p in PHASES)


def test_a_lost_order_at_the_end_fails_a_story_whose_phases_all_passed(tmp_path: Path) -> None:
    summary = execute(_story(select(), orders_lost=3), steps=_steps([]), summary_path=tmp_path / "s.json")
    assert summary["result"] == "failed"
    assert all(p["status"] == "passed" for p in summary["phases"])


def test_the_alb_not_serving_at_the_end_fails_the_story(tmp_path: Path) -> None:
    summary = execute(_story(select(), shop_status_through_alb=503), steps=_steps([]), summary_path=tmp_path / "s.json")
    assert summary["result"] == "failed"


def test_a_crash_inside_a_phase_is_a_failed_phase_not_a_lost_scoreboard(tmp_path: Path) -> None:
    steps = _steps([])

    def broken(story: Story) -> None:
        raise KeyError("Parameter")

    steps["bake"] = broken
    summary = execute(_story(select(until="deploy")), steps=steps, summary_path=tmp_path / "s.json")
    bake = next(p for p in summary["phases"] if p["name"] == "bake")
    assert bake["status"] == "failed" and "KeyError" in bake["error"]
    assert summary["result"] == "failed"


# ---------------------------------------------------------------------- traffic against a local server


class _Shop(BaseHTTPRequestHandler):
    """A scripted shop: answers from the server's script queue, then 201 with increasing ids."""

    def log_message(self, *args: Any) -> None:
        return None

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        server = cast(Any, self.server)
        length = int(self.headers.get("Content-Length", "0"))
        ref = json.loads(self.rfile.read(length))["order_ref"]
        with server.lock:
            status = server.script.pop(0) if server.script else 201
            server.seen.append((ref, status))
            server.next_id += 1
            ident = server.next_id
        self._answer(status, {"id": ident, "order_ref": ref} if status == 201 else {"error": "x"})

    def do_GET(self) -> None:
        server = cast(Any, self.server)
        with server.lock:
            status = server.health.pop(0) if server.health else 200
        self._answer(status, {"status": "ok"})


@pytest.fixture
def shop() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Shop)
    server_any = cast(Any, server)
    server_any.lock = threading.Lock()
    server_any.script = []
    server_any.health = []
    server_any.seen = []
    server_any.next_id = 100
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _url(server: Any) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_target_refuses_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match="only goes to"):
        Target("http://10.0.0.5:8080")
    with pytest.raises(ValueError, match="only goes to"):
        Target("https://example.com:443")


def test_order_loop_retries_a_read_only_answer_with_the_same_ref_and_counts_it_failed(shop: Any) -> None:
    shop.script = [503, 503, 201]
    loop = OrderLoop(Target(_url(shop)), prefix="t", retry_pause=0.01)
    loop.phase = "cutover"
    assert loop.place("t-000001") is True
    assert [s for _, s in shop.seen] == [503, 503, 201]
    assert {r for r, _ in shop.seen} == {"t-000001"}
    assert loop.confirmed == {"t-000001": 103}
    assert loop.failed("cutover") == 2 and loop.failed("patch") is None


def test_a_409_on_a_retry_is_confirmed_but_on_a_first_try_it_is_not_ours(shop: Any) -> None:
    shop.script = [502, 409, 409]
    loop = OrderLoop(Target(_url(shop)), retry_pause=0.01)
    assert loop.place("a") is True and loop.confirmed == {"a": None}
    assert loop.place("b") is False and "b" not in loop.confirmed


def test_an_order_never_confirmed_is_bounded_and_not_counted(shop: Any) -> None:
    shop.script = [503] * 5
    loop = OrderLoop(Target(_url(shop)), retries=3, retry_pause=0.01)
    assert loop.place("x") is False
    assert loop.unconfirmed == ["x"] and loop.confirmed == {}
    assert len(shop.seen) == 3


def test_order_loop_switches_its_front_door(shop: Any) -> None:
    other = ThreadingHTTPServer(("127.0.0.1", 0), _Shop)
    other_any = cast(Any, other)
    other_any.lock, other_any.script, other_any.health, other_any.seen, other_any.next_id = (
        threading.Lock(),
        [],
        [],
        [],
        500,
    )
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        loop = OrderLoop(Target(_url(shop)), retry_pause=0.01)
        loop.place("before")
        loop.switch(Target(_url(other)))
        loop.place("after")
        assert [r for r, _ in shop.seen] == ["before"] and [r for r, _ in other_any.seen] == ["after"]
        assert loop.confirmed == {"before": 101, "after": 501}
    finally:
        other.shutdown()
        other.server_close()


def test_probe_counts_failures_only_after_the_alb_first_served(shop: Any) -> None:
    shop.health = [503, 503, 200, 200, 502, 200]
    with Probe(Target(_url(shop)), interval=0.0, max_requests=8) as probe:
        deadline = threading.Event()
        for _ in range(200):
            if probe.sent >= 8:
                break
            deadline.wait(0.02)
    assert probe.before_first_ok == 2
    assert probe.failed == 1
    assert probe.sent == 8


def test_an_interrupt_before_a_phase_stops_the_story_and_still_writes_the_scoreboard(tmp_path: Path) -> None:
    calls: list[str] = []
    steps = _steps(calls)
    story = _story(select())

    def provision_then_ctrl_c(s: Story) -> None:
        calls.append("provision")
        s.cancel.set()

    steps["provision"] = provision_then_ctrl_c
    summary = execute(story, steps=steps, summary_path=tmp_path / "s.json")
    assert calls == ["estate", "provision"]
    statuses = {p["name"]: p["status"] for p in summary["phases"]}
    assert statuses["bake"] == "interrupted" and statuses["report"] == "skipped"
    assert summary["interrupted"] is True and summary["result"] == "failed"
    assert (tmp_path / "s.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--twin-prefix", "Bad Prefix"], "--twin-prefix 'Bad Prefix'"),
        (["--twin-subnet", "10.89.86.0/33"], "--twin-subnet '10.89.86.0/33'"),
        (["--twin-subnet", "10.89.86.0/30"], "at least /28"),
    ],
)
def test_cli_refuses_a_bad_twin_prefix_or_subnet(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["rehearse", *args]) == 2
    assert message in capsys.readouterr().err


def test_the_moves_records_are_read_from_the_right_site_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Story.onprem_record: the app server's or the DB server's JSON record, or why there is none."""
    import subprocess
    from types import SimpleNamespace

    from gearlift.story import runner

    files = {("t-onprem-db", "/r/cutover.json"): '{"read_only_seconds": 9.7}', ("t-onprem-app", "/r/f.json"): "[1]"}

    def exec_(container: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        body = files.get((container, cmd[-1]))
        return subprocess.CompletedProcess(cmd, 0 if body else 1, body or "", "" if body else "No such file")

    monkeypatch.setattr(runner.podman, "exec_", exec_)
    story = Story(twin=cast(Twin, object()), repo=Path("."), plan=select(), log=lambda _line: None)
    story.onprem = cast(Any, SimpleNamespace(db_container="t-onprem-db", app_container="t-onprem-app"))
    assert story.onprem_record("/r/cutover.json", host="db") == {"read_only_seconds": 9.7}
    assert story.onprem_record("/r/f.json") == {"unexpected": [1]}
    assert story.onprem_record("/r/cutover.json") == {"missing": "/r/cutover.json on t-onprem-app: No such file"}


class AuditStory(Story):
    """A story whose playbooks/audit.yml writes the given summaries (no twin)."""

    summaries: dict[str, dict[str, int]]
    played: list[tuple[str, dict[str, Any]]]

    def play(self, playbook: str, tags: str | None = None, onprem: bool = False, **extra: Any) -> Any:
        self.played.append((playbook, extra))
        out = Path(extra["audit_report_dir"])
        out.mkdir(parents=True, exist_ok=True)
        for host, summary in self.summaries.items():
            controls = [
                {"id": f"{status}-{n}", "cis": "", "pci": [], "title": "t", "status": status, "detail": ""}
                for status, count in summary.items()
                for n in range(count)
            ]
            (out / f"{host}.json").write_text(json.dumps({"summary": summary, "controls": controls}), encoding="utf-8")
        return None


def _audit_story(tmp_path: Path, summaries: dict[str, dict[str, int]], deployed: bool) -> AuditStory:
    story = AuditStory(twin=cast(Twin, object()), repo=tmp_path, plan=select(), log=lambda _line: None)
    story.summaries, story.played = summaries, []
    if deployed:
        story.records.append(PhaseRecord("deploy", status="passed"))
    story.records.append(PhaseRecord("report"))
    return story


def test_the_report_audits_the_fleet_and_a_failing_control_after_a_deploy_fails_it(tmp_path: Path) -> None:
    from gearlift.story.runner import fleet_audit

    stale = tmp_path / "reports" / "rehearsal" / "audit" / "i-gone.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}", encoding="utf-8")
    stale.with_suffix(".md").write_text("# Audit of i-gone\n", encoding="utf-8")
    clean = {"i-a": {"pass": 130, "fail": 0, "skipped": 9}, "i-b": {"pass": 130, "fail": 0, "skipped": 9}}
    story = _audit_story(tmp_path, clean, deployed=True)
    out = fleet_audit(story)
    assert story.played == [("playbooks/audit.yml", {"audit_hosts": "env_rehearsal", "audit_report_dir": str(out)})]
    assert sorted(p.name for p in out.iterdir()) == ["i-a.json", "i-b.json"]  # an earlier fleet's files are gone
    assert story.board.detail["fleet_audit"]["i-b"] == {"pass": 130, "fail": 0, "skipped": 9}

    failing = {**clean, "i-b": {"pass": 129, "fail": 1, "skipped": 9}}
    with pytest.raises(PhaseFailed, match="controls fail on the fleet after the deploy: i-b"):
        fleet_audit(_audit_story(tmp_path, failing, deployed=True))
    # without a deploy the fleet is site.yml's seed hosts: their figures are recorded, not judged
    assert fleet_audit(_audit_story(tmp_path, failing, deployed=False)) == out
    with pytest.raises(PhaseFailed, match="wrote no readable report"):
        fleet_audit(_audit_story(tmp_path, {}, deployed=True))

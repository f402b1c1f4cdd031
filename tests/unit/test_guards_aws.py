"""Guards that know AWS: the generated catalog, its use by validate(), one source of truth, the fact cache.

* the catalog (plugins/module_utils/aws_catalog.py) equals what scripts/gen-aws-catalog produces
  from the installed botocore now, and its architecture rule agrees with the DescribeInstanceTypes
  snapshot moto ships;
* bad input that only AWS would have refused, half-way through a run, is refused by validate()
  first: each case changes one setting of the valid production config of test_guards.py and
  asserts the setting named, the reason and the fix the message gives;
* roles/guards/meta/argument_specs.yml is the source of truth: the role's defaults and the tables
  in module_utils/guards.py must agree with it;
* the fact cache lives outside the repository, 0700, without environment facts (issue 18, item 4).
"""

from __future__ import annotations

import configparser
import gzip
import importlib.machinery
import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from ansible_collections.gearlift.platform.plugins.module_utils import aws_catalog, guards
from ansible_collections.gearlift.platform.plugins.module_utils.guards import validate

from .test_guards import CERT, PLAYBOOK, _run_role, production

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "guards"
GENERATOR = REPO / "scripts" / "gen-aws-catalog"
CATALOG = REPO / "plugins" / "module_utils" / "aws_catalog.py"


def _generator() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("gen_aws_catalog", str(GENERATOR))
    spec = importlib.util.spec_from_loader("gen_aws_catalog", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


# --------------------------------------------------------------------------
# the catalog
# --------------------------------------------------------------------------


def test_committed_catalog_equals_what_the_script_generates_now() -> None:
    committed = CATALOG.read_text(encoding="utf-8")
    date = re.search(
        r"^# Generated on (\d{4}-\d{2}-\d{2}) by scripts/gen-aws-catalog from botocore (\S+) ", committed, re.M
    )
    assert date, "the catalog header must name its date and botocore version"
    import botocore

    assert date.group(2) == botocore.__version__, "botocore changed: run scripts/gen-aws-catalog"
    assert _generator().render(date.group(1)) == committed, "stale catalog: run scripts/gen-aws-catalog"


def test_generator_check_mode_detects_a_stale_catalog(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr

    generator = _generator()
    stale = tmp_path / "aws_catalog.py"
    stale.write_text(CATALOG.read_text(encoding="utf-8").replace('"db.t3.medium",\n', ""), encoding="utf-8")
    generator.TARGET = stale
    generator.REPO = tmp_path
    sys_argv, sys.argv = sys.argv, ["gen-aws-catalog", "--check"]
    try:
        assert generator.main() == 1
    finally:
        sys.argv = sys_argv


def test_catalog_holds_botocore_regions_types_and_the_curated_tables() -> None:
    from botocore.loaders import Loader

    enum = Loader().load_service_model("ec2", "service-2")["shapes"]["InstanceType"]["enum"]
    assert set(guards.INSTANCE_TYPES) == set(enum)
    assert aws_catalog.REGIONS["eu-west-1"] == "aws"
    assert aws_catalog.REGIONS["cn-north-1"] == "aws-cn"
    assert aws_catalog.REGIONS["us-gov-west-1"] == "aws-us-gov"
    assert not [r for r in aws_catalog.REGIONS if r.endswith("-global")]
    assert "db.t3.medium" in aws_catalog.RDS_MYSQL_INSTANCE_CLASSES
    assert "8.0.38" not in aws_catalog.RDS_MYSQL_ENGINE_VERSIONS
    assert aws_catalog.ALB_SSL_POLICIES[guards.RECOMMENDED_TLS_POLICY] == "1.2"
    for table in ("regions", "instance_types", "rds_mysql_instance_classes", "rds_mysql_engine_versions"):
        assert aws_catalog.SOURCES[table]
    curated = [v for k, v in aws_catalog.SOURCES.items() if k not in ("regions", "instance_types")]
    assert all("https://" in source and re.search(r"curated \d{4}-\d{2}-\d{2}", source) for source in curated)


def test_architecture_rule_agrees_with_describe_instance_types() -> None:
    """moto's instance_types.json is a DescribeInstanceTypes snapshot: SupportedArchitectures per type."""
    moto_ec2 = pytest.importorskip("moto.ec2")
    snapshot = Path(moto_ec2.__file__).parent / "resources" / "instance_types.json.gz"
    described = json.loads(gzip.decompress(snapshot.read_bytes()))
    compared = 0
    wrong = []
    for name, architecture in guards.INSTANCE_TYPES.items():
        if name not in described:
            continue
        real = {
            a.removesuffix("_mac").replace("i386", "x86_64")
            for a in described[name]["ProcessorInfo"]["SupportedArchitectures"]
        }
        compared += 1
        if real != {architecture}:
            wrong.append((name, architecture, sorted(real)))
    assert compared > 1000
    assert not wrong, wrong


def test_alb_policies_agree_with_moto() -> None:
    ssl_policies = pytest.importorskip("moto.elbv2.ssl_policies")
    lowest = {"TLSv1": "1.0", "TLSv1.1": "1.1", "TLSv1.2": "1.2", "TLSv1.3": "1.3"}
    for name, policy in ssl_policies.SSL_POLICIES.items():
        assert aws_catalog.ALB_SSL_POLICIES[name] == min(lowest[p] for p in policy["ssl_protocols"]), name


# --------------------------------------------------------------------------
# bad input AWS would refuse, or that does not exist: refused first, naming the fix
# --------------------------------------------------------------------------

GOV_LAMBDA = "arn:aws-us-gov:lambda:eu-west-1:111122223333:function:mysql-rotation"

AWS_CASES: list[tuple[str, dict[str, Any], str, str, str]] = [
    # id, changes, setting named, words of the reason, words of the fix
    (
        "region-typo",
        {"gearlift_region": "eu-wset-1"},
        "gearlift_region",
        "not an AWS region",
        "did you mean eu-west-1?",
    ),
    (
        "region-unknown",
        {"gearlift_region": "eu-west-9"},
        "gearlift_region",
        "not an AWS region",
        "Use an existing region",
    ),
    ("region-empty", {"gearlift_region": ""}, "gearlift_region", "is empty", "like eu-west-1"),
    (
        "copy-region-unknown",
        {"gearlift_backup_copy_region": "eu-central-9"},
        "gearlift_backup_copy_region",
        "not an AWS region",
        "Use an existing region",
    ),
    (
        "copy-region-other-partition",
        {"gearlift_backup_copy_region": "cn-north-1"},
        "gearlift_backup_copy_region",
        "copies only within a partition",
        "Pick a copy region of the same partition",
    ),
    (
        "certificate-other-partition",
        {"gearlift_certificate_arn": CERT.replace("arn:aws:", "arn:aws-cn:")},
        "gearlift_certificate_arn",
        "partition aws-cn",
        "use an ARN starting arn:aws:",
    ),
    (
        "rotation-lambda-other-partition",
        {"gearlift_app_secret_rotation_lambda_arn": GOV_LAMBDA},
        "gearlift_app_secret_rotation_lambda_arn",
        "partition aws-us-gov",
        "use an ARN starting arn:aws:",
    ),
    (
        "instance-type-typo",
        {"gearlift_instance_type": "m7g.lrage"},
        "gearlift_instance_type",
        "not an EC2 instance type",
        "did you mean m7g.large?",
    ),
    (
        "instance-size-does-not-exist",
        {"gearlift_instance_type": "t4g.huge", "gearlift_architecture": "arm64"},
        "gearlift_instance_type",
        "not an EC2 instance type",
        "Pick an existing type",
    ),
    (
        "instance-type-mac",
        {"gearlift_instance_type": "mac2.metal"},
        "gearlift_instance_type",
        "Dedicated Host",
        "Use a Linux type",
    ),
    (
        "graviton-network-type-on-x86-image",
        {"gearlift_instance_type": "c6gn.large", "gearlift_architecture": "x86_64"},
        "gearlift_architecture",
        "c6gn.large is an arm64 type",
        "Set gearlift_architecture: arm64",
    ),
    (
        "intel-type-on-arm-image",
        {"gearlift_instance_type": "c7i.large"},
        "gearlift_architecture",
        "c7i.large is an x86_64 type",
        "Set gearlift_architecture: x86_64",
    ),
    (
        "db-class-typo",
        {"gearlift_db_instance_class": "db.t3.medum"},
        "gearlift_db_instance_class",
        "not a current-generation RDS for MySQL instance class",
        "did you mean db.t3.medium?",
    ),
    (
        "db-class-size-does-not-exist",
        {"gearlift_db_instance_class": "db.m6g.24xlarge"},
        "gearlift_db_instance_class",
        "not a current-generation RDS for MySQL instance class",
        "Use one like db.t4g.medium",
    ),
    (
        "db-class-previous-generation",
        {"gearlift_db_instance_class": "db.t2.micro"},
        "gearlift_db_instance_class",
        "previous generations such as db.t2",
        "Use one like",
    ),
    (
        "engine-version-withdrawn",
        {"gearlift_db_engine_version": "8.0.38"},
        "gearlift_db_engine_version",
        "not an RDS for MySQL version",
        'or "8.0" for RDS\'s current default minor version',
    ),
    (
        "engine-version-major-8.4",
        {"gearlift_db_engine_version": "8.4.3"},
        "gearlift_db_engine_version",
        "family mysql8.0",
        'quote the value: "8.0"',
    ),
    (
        "tls-policy-classic-only",
        {"gearlift_alb_ssl_policy": "ELBSecurityPolicy-2015-03"},
        "gearlift_alb_ssl_policy",
        "Classic Load Balancer policy",
        "Use ELBSecurityPolicy-TLS13-1-2-2021-06",
    ),
    (
        "tls-policy-typo",
        {"gearlift_alb_ssl_policy": "ELBSecurityPolicy-TLS13-1-2-2021-07"},
        "gearlift_alb_ssl_policy",
        "not an ALB security policy",
        "did you mean ELBSecurityPolicy-TLS13-1-2-2021-06?",
    ),
    (
        "master-user-rdsadmin",
        {"gearlift_db_master_username": "rdsadmin"},
        "gearlift_db_master_username",
        "RDS for MySQL keeps for itself",
        "pick another name",
    ),
    (
        "master-user-reserved-word",
        {"gearlift_db_master_username": "select"},
        "gearlift_db_master_username",
        "MySQL reserved word",
        "'admin' is allowed",
    ),
    (
        "db-name-reserved-word",
        {"gearlift_db_name": "order"},
        "gearlift_db_name",
        "MySQL reserved word",
        "Use another name (like shop)",
    ),
    (
        "app-user-rds-reserved",
        {"gearlift_db_app_username": "rdsrepladmin"},
        "gearlift_db_app_username",
        "RDS for MySQL keeps for itself",
        "pick another name",
    ),
    (
        "app-user-is-the-replication-login",
        {"gearlift_db_app_username": "repl_gearlift"},
        "gearlift_db_app_username",
        "replication login the database move creates",
        "pick another name",
    ),
    (
        "app-port-ssh",
        {"gearlift_app_port": 22},
        "gearlift_app_port",
        "22 collides with SSH",
        "the port Apache listens on",
    ),
    (
        "app-port-jvm",
        {"gearlift_app_port": 8080},
        "gearlift_app_port",
        "8080 collides with the JVM behind Apache",
        "apache_listen_port, 80",
    ),
    (
        "health-interval-not-above-timeout",
        {"gearlift_health_check_interval": 5},
        "gearlift_health_check_interval",
        "not above the health-check timeout",
        "Use 6 or more",
    ),
    (
        "health-interval-above-300",
        {"gearlift_health_check_interval": 301},
        "gearlift_health_check_interval",
        "301 is outside",
        "range 5..300",
    ),
    (
        "healthy-threshold-11",
        {"gearlift_healthy_threshold": 11},
        "gearlift_healthy_threshold",
        "11 is outside",
        "range 2..10",
    ),
    (
        "unhealthy-threshold-1",
        {"gearlift_unhealthy_threshold": 1},
        "gearlift_unhealthy_threshold",
        "1 is outside",
        "range 2..10",
    ),
    (
        "deregistration-delay-3601",
        {"gearlift_deregistration_delay": 3601},
        "gearlift_deregistration_delay",
        "3601 is outside",
        "range 0..3600",
    ),
    (
        "backup-retention-36",
        {"gearlift_db_backup_retention_days": 36},
        "gearlift_db_backup_retention_days",
        "36 is outside",
        "range 1..35",
    ),
    (
        "storage-below-gp3-minimum",
        {"gearlift_db_allocated_storage": 19},
        "gearlift_db_allocated_storage",
        "gp3 storage for MySQL is 20-65536 GiB",
        "start with 20-13107 GiB",
    ),
    (
        "storage-autoscaling-beyond-gp3-maximum",
        {"gearlift_db_allocated_storage": 20000},
        "gearlift_db_allocated_storage",
        "grow to 5x",
        "start with 20-13107 GiB",
    ),
    (
        "asg-desired-above-max",
        {"gearlift_asg_desired_capacity": 9},
        "gearlift_asg_desired_capacity",
        "min 2 <= desired 9 <= max 8 does not hold",
        "gearlift_asg_max_size",
    ),
    (
        "asg-max-zero",
        {"gearlift_asg_max_size": 0, "gearlift_asg_peak_schedule": []},
        "gearlift_asg_max_size",
        "0 is outside",
        "(>= 1)",
    ),
    (
        "refresh-takes-whole-fleet",
        {"gearlift_refresh_min_healthy_percentage": 0},
        "gearlift_refresh_min_healthy_percentage",
        "more than half of the fleet",
        "use 50 or more",
    ),
]


def test_at_least_25_aws_cases() -> None:
    assert len(AWS_CASES) >= 25
    assert len({c[0] for c in AWS_CASES}) == len(AWS_CASES)


@pytest.mark.parametrize(
    ("changes", "setting", "reason", "fix"), [c[1:] for c in AWS_CASES], ids=[c[0] for c in AWS_CASES]
)
def test_aws_bad_input_is_refused_with_the_reason_and_the_fix(
    changes: dict[str, Any], setting: str, reason: str, fix: str
) -> None:
    assert validate(production()).ok  # the base config is valid: the change alone is refused

    result = validate(production(**changes))

    assert len(result.errors) == 1, result.errors
    message = result.errors[0]
    assert message.startswith(f"{setting}: "), message
    assert reason in message, message
    assert fix in message, message
    assert message.endswith("No override exists: change the value."), message


@pytest.mark.parametrize(
    "changes",
    [
        {
            "gearlift_region": "il-central-1",
            "gearlift_certificate_arn": CERT.replace("eu-west-1", "il-central-1"),
            "gearlift_app_secret_rotation_lambda_arn": "arn:aws:lambda:il-central-1:111122223333:function:rotation",
        },
        {
            "gearlift_region": "eusc-de-east-1",
            "gearlift_certificate_arn": "arn:aws-eusc:acm:eusc-de-east-1:111122223333:certificate/abc",
            "gearlift_app_secret_rotation_lambda_arn": "arn:aws-eusc:lambda:eusc-de-east-1:111122223333:function:r",
            "gearlift_backup_copy_region": "",
        },
        {"gearlift_instance_type": "c7i.large", "gearlift_architecture": "x86_64"},
        {"gearlift_instance_type": "t4g.small"},
        {"gearlift_db_instance_class": "db.r7g.large", "gearlift_db_engine_version": "8.0.40"},
        {"gearlift_alb_ssl_policy": "ELBSecurityPolicy-TLS13-1-3-2021-06"},
        {"gearlift_db_master_username": "admin", "gearlift_app_port": 8443},
        {"gearlift_health_check_interval": 6, "gearlift_db_allocated_storage": 13107},
        {"gearlift_refresh_min_healthy_percentage": 50},
    ],
    ids=["region", "eusc-partition", "x86", "t4g", "db-class-version", "tls13", "admin-8443", "limits", "refresh-50"],
)
def test_existing_names_and_values_at_the_limits_pass(changes: dict[str, Any]) -> None:
    result = validate(production(**changes))
    assert result.ok, result.errors


def test_an_app_port_other_than_the_images_is_warned() -> None:
    result = validate(production(gearlift_app_port=8443))
    assert result.ok, result.errors
    assert result.warnings == [
        "gearlift_app_port: 8443: the golden image's Apache listens on apache_listen_port (80 unless the image "
        "inventory sets it) and its firewall opens hardening_firewall_allowed_tcp_ports; bake both with 8443, "
        "or every target stays unhealthy."
    ]
    assert validate(production(gearlift_app_port=80)).warnings == []


def test_outside_production_a_fast_refresh_is_accepted() -> None:
    assert validate(production(gearlift_environment="rehearsal", gearlift_refresh_min_healthy_percentage=0)).ok


def test_role_refuses_a_type_that_does_not_exist_before_any_aws_call(tmp_path: Path) -> None:
    assert "Guards only" in PLAYBOOK
    run = _run_role(tmp_path, production(gearlift_instance_type="m7g.lrage"))

    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "1. gearlift_instance_type: 'm7g.lrage' is not an EC2 instance type (did you mean m7g.large?)" in output
    assert "The plan after the guards" not in output


def test_shipped_inventories_pass_the_aws_guards() -> None:
    """Both inventories' group_vars, every file, with the rehearsal's templated values replaced."""
    for inventory in ("production-example", "rehearsal"):
        config: dict[str, Any] = {}
        for path in sorted((REPO / "inventories" / inventory / "group_vars" / "all").glob("*.yml")):
            config.update(yaml.safe_load(path.read_text()) or {})
        config = {k: v for k, v in config.items() if k.startswith("gearlift_")}
        config = {k: v for k, v in config.items() if not (isinstance(v, str) and "{{" in v)}
        config.setdefault(
            "gearlift_certificate_arn", f"arn:aws:acm:{config['gearlift_region']}:123456789012:certificate/x"
        )
        result = validate(config)
        assert result.ok, (inventory, result.errors)
        assert config["gearlift_region"] in aws_catalog.REGIONS
        assert config["gearlift_instance_type"] in guards.INSTANCE_TYPES
        assert config["gearlift_db_instance_class"] in aws_catalog.RDS_MYSQL_INSTANCE_CLASSES


# --------------------------------------------------------------------------
# one source of truth: the argument spec
# --------------------------------------------------------------------------


def _spec() -> dict[str, Any]:
    return yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]


def _description(option: dict[str, Any]) -> str:
    text = option.get("description", "")
    return " ".join(text) if isinstance(text, list) else str(text)


def _disagreement(where: str, spec_defaults: dict[str, Any], other: dict[str, Any]) -> str:
    missing = sorted(set(spec_defaults) - set(other))
    extra = sorted(set(other) - set(spec_defaults))
    differ = {
        k: (spec_defaults[k], other[k]) for k in sorted(set(spec_defaults) & set(other)) if spec_defaults[k] != other[k]
    }
    if not (missing or extra or differ):
        return ""
    return (
        f"{where} disagrees with meta/argument_specs.yml: missing {missing}, not in the spec {extra}, "
        f"different {differ}"
    )


def test_role_defaults_and_module_utils_defaults_follow_the_argument_spec() -> None:
    spec = _spec()
    spec_defaults = {name: option["default"] for name, option in spec.items() if "default" in option}
    role_defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())

    problems = [
        _disagreement("roles/guards/defaults/main.yml", spec_defaults, role_defaults),
        _disagreement("DEFAULTS in plugins/module_utils/guards.py", spec_defaults, guards.DEFAULTS),
    ]
    assert not [p for p in problems if p], "\n".join(problems)
    assert sorted(n for n, o in spec.items() if o.get("required")) == sorted(guards.REQUIRED)
    assert sorted(n for n, o in spec.items() if "default" not in o and not o.get("required")) == sorted(guards.OPTIONAL)
    assert sorted(n for n in spec if n.startswith("gearlift_allow_")) == sorted(guards.OVERRIDES)


def test_drift_check_names_what_disagrees() -> None:
    spec_defaults = {"gearlift_a": 1, "gearlift_b": [], "gearlift_c": True}
    message = _disagreement("x", spec_defaults, {"gearlift_a": 2, "gearlift_b": [], "gearlift_d": "?"})
    assert message == (
        "x disagrees with meta/argument_specs.yml: missing ['gearlift_c'], not in the spec ['gearlift_d'], "
        "different {'gearlift_a': (1, 2)}"
    )
    assert _disagreement("x", spec_defaults, dict(spec_defaults)) == ""


def test_module_utils_choices_follow_the_argument_spec() -> None:
    spec = _spec()
    tables = {
        "gearlift_environment": guards.ENVIRONMENTS,
        "gearlift_nat_mode": guards.NAT_MODES,
        "gearlift_architecture": guards.ARCHITECTURES,
        "gearlift_interface_endpoints": guards.INTERFACE_ENDPOINTS,
        "gearlift_security_hub_standards": guards.SECURITY_HUB_STANDARDS,
    }
    for name, table in tables.items():
        assert list(spec[name]["choices"]) == list(table), name
    # the checker's own literal choices
    assert spec["gearlift_imds_http_tokens"]["choices"] == ["required", "optional"]
    assert spec["gearlift_az_count"]["choices"] == [2, 3]
    assert spec["gearlift_log_retention_days"]["type"] == "int"
    assert ", ".join(map(str, guards.LOG_RETENTION_DAYS)) in _description(spec["gearlift_log_retention_days"])


def test_module_utils_ranges_follow_the_argument_spec() -> None:
    """Each closed range in RANGES is the first 'low-high' of the option's description, and back."""
    spec = _spec()
    stated: dict[str, tuple[int, int]] = {}
    for name, option in spec.items():
        if option.get("type") != "int":
            continue
        found = re.search(r"\b(\d+)-(\d+)\b", _description(option))
        if found:
            stated[name] = (int(found.group(1)), int(found.group(2)))
    closed = {name: r for name, r in guards.RANGES.items() if r[0] is not None and r[1] is not None}
    assert stated == closed
    assert set(guards.RANGES) <= {n for n, o in spec.items() if o.get("type") == "int"}


def test_a_spec_default_outside_its_range_would_be_caught() -> None:
    """The defaults themselves pass the guards (a default the checker refuses is drift too)."""
    spec = _spec()
    for name, (low, high) in guards.RANGES.items():
        default = spec[name].get("default")
        if default is None:
            continue
        assert (low is None or default >= low) and (high is None or default <= high), name


# --------------------------------------------------------------------------
# issue 18 item 4: the fact cache outside the repository, 0700, no environment facts
# --------------------------------------------------------------------------


def _cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(REPO / "ansible.cfg")
    return parser


def test_fact_cache_lives_outside_the_repository() -> None:
    cfg = _cfg()
    assert cfg["defaults"]["fact_caching"] == "jsonfile"
    connection = cfg["defaults"]["fact_caching_connection"]
    resolved = Path(os.path.expanduser(os.path.expandvars(connection)))
    assert resolved.is_absolute(), connection
    assert REPO not in resolved.parents and resolved != REPO, connection
    assert connection == "~/.cache/gearlift/facts"


def _audit_plays() -> list[dict[str, Any]]:
    return yaml.safe_load((REPO / "playbooks" / "audit.yml").read_text())


def test_audit_gathers_every_fact_but_the_environment() -> None:
    gathering = [p for p in _audit_plays() if p.get("gather_facts", True)]
    assert gathering
    for play in gathering:
        subset = play.get("gather_subset")
        # ['!env'] alone would gather only the minimal subset; 'all' then the exclusion
        assert subset == ["all", "!env"], play["name"]


def test_audit_subset_really_keeps_the_environment_out_of_the_cache(tmp_path: Path) -> None:
    """The setup module with audit.yml's own gather_subset, cached by jsonfile: no variable of the env."""
    subset = next(p["gather_subset"] for p in _audit_plays() if p.get("gather_facts", True))
    play = tmp_path / "facts.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Facts as audit.yml gathers them",
                    "hosts": "localhost",
                    "gather_facts": True,
                    "gather_subset": subset,
                    "tasks": [
                        {"name": "Mounts came", "ansible.builtin.assert": {"that": "ansible_facts.mounts | length > 0"}}
                    ],
                }
            ]
        )
    )
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "GEARLIFT_TEST_PROBE_SECRET": "probe-value-4711",
    }
    run = subprocess.run(
        [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    cached = list(cache.iterdir())
    assert cached, "the jsonfile cache wrote nothing"
    text = "".join(p.read_text() for p in cached)
    assert "ansible_mounts" in text
    assert "probe-value-4711" not in text and "GEARLIFT_TEST_PROBE_SECRET" not in text
    assert '"ansible_env"' not in text


def test_audit_first_play_makes_the_cache_directory_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
    }
    cmd = [
        str(REPO / ".venv" / "bin" / "ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        str(REPO / "playbooks" / "audit.yml"),
        "-e",
        "audit_hosts=no_such_host",
    ]
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    facts = home / ".cache" / "gearlift" / "facts"
    assert stat.S_IMODE(facts.stat().st_mode) == 0o700
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert "changed=0" in again.stdout, again.stdout  # idempotent


def test_gitignore_still_ignores_a_local_cache() -> None:
    assert ".cache/" in (REPO / ".gitignore").read_text().split()

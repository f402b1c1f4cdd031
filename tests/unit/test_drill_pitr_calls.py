"""The restore drill's pitr path, call by call (roles/db_migration/tasks/restore_drill.yml).

The rehearsal drills with ``dump``: the emulator keeps no data behind a point-in-time restore.
Here the collection modules of the pitr tasks (``amazon.aws.rds_instance_info``,
``amazon.aws.rds_instance``) run in-process with the arguments of those very tasks - read from
the role's task file and rendered by Ansible's templar with the role defaults and a few
variables - against moto's RDS, which implements RestoreDBInstanceToPointInTime. Results go
back to the tasks as Ansible registers them (module-to-controller JSON), so the wait task's
``until`` sees LatestRestorableTime in the form a real run compares.

Where moto's answer is not RDS's, the request is asserted instead: moto ignores RestoreTime (no
data behind it), copies the source's parameter group, Multi-AZ, deletion protection and backup
retention whatever the request says, while RDS takes the engine's defaults unless told.
"""

from __future__ import annotations

import datetime
from typing import Any

import boto3
import moto.rds.models
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.amazon.aws.plugins.modules import rds_instance, rds_instance_info
from botocore.utils import parse_timestamp
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from .module_harness import (
    REPO,
    CallLog,
    Result,
    condition,
    dummy_aws_env,
    find_task,
    load_tasks,
    module_of,
    registered,
    role_defaults,
    run_main,
    task_args,
    templar,
)

TASKS = REPO / "roles" / "db_migration" / "tasks" / "restore_drill.yml"
REGION = "eu-west-1"
PROD = "shop-production"
DRILL = f"{PROD}-drill-20260112031502"
UTC = datetime.UTC

T = "DB migration | Drill | "
PRODUCTION_NOW = T + "Production right now"
PRODUCTION_EXISTS = T + "Production exists"
START = T + "Start of the drill"
WAIT = T + "Wait until production's restorable time passes the point"
RESTORE = T + "A new instance from the recovery point (RDS point-in-time restore)"
TAG = T + "Tag the restored instance"
CREATE_EMPTY = T + "A new, empty instance like production"
REMOVE = T + "Remove the drill instance (no final snapshot)"
INPUTS = T + "Check the inputs"

# A recovery point as recovery-point --checksums-only records it: on a whole second plus the
# few milliseconds it takes to open the snapshot after the writes were held across that second.
POINT_AT = datetime.datetime(2026, 1, 12, 3, 15, 2, 5123, tzinfo=UTC)
POINT = {
    "at": POINT_AT.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    "at_epoch": POINT_AT.timestamp(),
    "binlog_file": "mysql-bin-changelog.004711",
    "binlog_pos": 157,
    "databases": ["shop"],
    "dump": None,
    "bytes": 0,
    "write_lock_seconds": 0.998,
    "tables": {"shop.orders": {"rows": 1200, "checksum": "3a6f"}},
}
TAGS = {"gearlift:environment": "production", "gearlift:owner": "platform", "gearlift:drill": "true"}
MODULES = {"amazon.aws.rds_instance": rds_instance.main, "amazon.aws.rds_instance_info": rds_instance_info.main}
READS = ("Describe", "List")


class Aws:
    """moto's RDS behind the modules, a log of their calls and production's restorable time."""

    def __init__(self, rds: Any, log: CallLog) -> None:
        self.rds = rds
        self.log = log
        self.latest_restorable = POINT_AT + datetime.timedelta(minutes=5)

    def describe(self, ident: str) -> dict[str, Any] | None:
        found = [i for i in self.rds.describe_db_instances()["DBInstances"] if i["DBInstanceIdentifier"] == ident]
        return found[0] if found else None

    def writes(self) -> list[tuple[str, dict[str, Any]]]:
        return [(name, params) for name, params in self.log.calls if not name.startswith(READS)]


@pytest.fixture
def aws(monkeypatch):
    dummy_aws_env(monkeypatch, REGION)
    with mock_aws():
        log = CallLog()
        rds = log.attach(boto3.client("rds", region_name=REGION))
        monkeypatch.setattr(
            AnsibleAWSModule,
            "client",
            lambda self, service, retry_decorator=None, **kw: (
                RetryingBotoClientWrapper(rds, retry_decorator) if retry_decorator else rds
            ),
        )
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
                "SubnetId"
            ]
            for i, az in enumerate("ab")
        ]
        sg = ec2.create_security_group(GroupName=f"{PROD}-db", Description="db tier", VpcId=vpc)["GroupId"]
        key = boto3.client("kms", region_name=REGION).create_key(Description="rds")["KeyMetadata"]["Arn"]
        setup = boto3.client("rds", region_name=REGION)  # not logged: the modules' calls only
        setup.create_db_subnet_group(
            DBSubnetGroupName=f"{PROD}-db", DBSubnetGroupDescription="db tier", SubnetIds=subnets
        )
        setup.create_db_parameter_group(
            DBParameterGroupName=f"{PROD}-mysql80", DBParameterGroupFamily="mysql8.0", Description="production"
        )
        setup.create_db_instance(
            DBInstanceIdentifier=PROD,
            Engine="mysql",
            EngineVersion="8.0.40",
            DBInstanceClass="db.m6g.large",
            AllocatedStorage=100,
            StorageType="gp3",
            # RDS reports gp3's baseline (rds_instance reads it when it modifies); moto only if given.
            Iops=3000,
            StorageThroughput=125,
            MasterUsername="admin",
            ManageMasterUserPassword=True,
            DBSubnetGroupName=f"{PROD}-db",
            DBParameterGroupName=f"{PROD}-mysql80",
            VpcSecurityGroupIds=[sg],
            StorageEncrypted=True,
            KmsKeyId=key,
            PubliclyAccessible=False,
            BackupRetentionPeriod=35,
            MultiAZ=True,
            DeletionProtection=True,
            Tags=[{"Key": "gearlift:environment", "Value": "production"}, {"Key": "gearlift:backup", "Value": "true"}],
        )
        state = Aws(rds, log)
        # moto reports "now"; the drill waits on this value (as moto's naive UTC).
        monkeypatch.setattr(
            moto.rds.models.DBInstance,
            "latest_restorable_time",
            property(lambda self: state.latest_restorable.astimezone(UTC).replace(tzinfo=None)),
        )
        yield state


def drill_vars(**extra: Any) -> dict[str, Any]:
    """The role defaults plus what playbooks/restore_drill.yml sets (pitr, the default)."""
    return {
        **role_defaults("db_migration"),
        "db_migration_drill_source_instance": PROD,
        "db_migration_drill_instance": DRILL,
        "db_migration_drill_region": REGION,
        "db_migration_drill_report_dir": "/srv/gearlift/reports",
        "db_migration_drill_tags": TAGS,
        **extra,
    }


def run(name: str, variables: dict[str, Any], check_mode: bool = False) -> tuple[dict[str, Any], Result]:
    module, args = task_args(TASKS, name, variables)
    return args, run_main(MODULES[module], args, check_mode=check_mode)


def before_the_restore(aws: Aws, **extra: Any) -> dict[str, Any]:
    """Variables as they stand when the block starts: production looked up, the point read."""
    variables = drill_vars(**extra)
    args, result = run(PRODUCTION_NOW, variables)
    assert not result.failed, result.data
    assert args["db_instance_identifier"] == PROD
    variables["__db_migration_drill_prod"] = registered(result)
    assert condition(find_task(TASKS, PRODUCTION_EXISTS)["ansible.builtin.assert"]["that"], variables)
    _, facts = task_args(TASKS, START, variables)
    variables.update(facts)
    variables["__db_migration_drill_point"] = POINT
    return variables


def restored(aws: Aws, **extra: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Run the restore task; its variables, rendered arguments and the one request it sent."""
    variables = before_the_restore(aws, **extra)
    aws.log.calls.clear()
    args, result = run(RESTORE, variables)
    assert not result.failed, result.data
    assert result["changed"] is True
    [request] = aws.log.params("RestoreDBInstanceToPointInTime")
    assert [name for name, _ in aws.writes()] == ["RestoreDBInstanceToPointInTime"]
    return variables, args, request


# ------------------------------------------------------------------ waiting for the restorable time


def test_wait_until_latest_restorable_time_reaches_the_point(aws):
    """The until of the wait task, on what rds_instance_info registers for production."""
    until = find_task(TASKS, WAIT)["until"]
    variables = before_the_restore(aws)
    cases = [
        (datetime.datetime(2026, 1, 11, 23, 59, 59, tzinfo=UTC), False),  # the day before
        (POINT_AT.replace(second=1, microsecond=0), False),
        (POINT_AT.replace(microsecond=0) - datetime.timedelta(microseconds=1), False),  # a hair short
        (POINT_AT.replace(microsecond=0), True),  # the restore time itself is restorable
        (POINT_AT + datetime.timedelta(milliseconds=400), True),
        (datetime.datetime(2026, 1, 13, 0, 0, 1, tzinfo=UTC), True),  # the day after
        (None, False),  # none reported (yet)
    ]
    for latest_restorable, ready in cases:
        aws.latest_restorable = latest_restorable or POINT_AT
        args, result = run(WAIT, variables)
        assert not result.failed, result.data
        assert args["db_instance_identifier"] == PROD
        lrt = registered(result)
        instance = lrt["instances"][0]
        if latest_restorable is None:
            del instance["latest_restorable_time"]
        else:
            assert parse_timestamp(instance["latest_restorable_time"]) == latest_restorable
        assert condition(until, {**variables, "__db_migration_drill_lrt": lrt}) is ready, (latest_restorable, ready)


@pytest.mark.parametrize("timeout", [1800, 600])
def test_wait_runs_for_pitr_only_and_for_the_drill_timeout(timeout):
    task = find_task(TASKS, WAIT)
    variables = drill_vars(db_migration_drill_timeout=timeout)
    assert condition(task["when"], variables) is True
    assert condition(task["when"], {**variables, "db_migration_drill_from": "dump"}) is False
    retries = templar(variables).template(task["retries"])
    assert int(retries) * int(task["delay"]) == timeout


# ------------------------------------------------------------------ the restore


def test_restore_names_production_and_the_point_second(aws):
    variables, args, request = restored(aws)
    assert args["creation_source"] == "instance"
    assert request["SourceDBInstanceIdentifier"] == args["source_db_instance_identifier"] == PROD
    assert "SourceDbiResourceId" not in request and "SourceDBInstanceAutomatedBackupsArn" not in request
    assert "UseLatestRestorableTime" not in request
    restore_time = parse_timestamp(request["RestoreTime"])
    point = datetime.datetime.fromisoformat(variables["__db_migration_drill_point"]["at"])
    # The whole second the point sits on: not after the point, less than a second before it.
    assert restore_time == point.replace(microsecond=0)
    assert point - datetime.timedelta(seconds=1) < restore_time <= point


def test_restored_instance_is_its_own_and_like_production(aws):
    variables, args, request = restored(aws)
    prod = variables["__db_migration_drill_prod"]["instances"][0]
    assert request["TargetDBInstanceIdentifier"] == args["db_instance_identifier"] == DRILL != PROD
    # What the task asks for, as sent, and that it is production's.
    expected = {
        "DBSubnetGroupName": ("db_subnet_group_name", prod["db_subnet_group"]["db_subnet_group_name"]),
        "DBParameterGroupName": ("db_parameter_group_name", prod["db_parameter_groups"][0]["db_parameter_group_name"]),
        "DBInstanceClass": ("db_instance_class", prod["db_instance_class"]),
        "VpcSecurityGroupIds": (
            "vpc_security_group_ids",
            [g["vpc_security_group_id"] for g in prod["vpc_security_groups"]],
        ),
    }
    for param, (option, production) in expected.items():
        assert request[param] == args[option] == production, param
    assert request["PubliclyAccessible"] is args["publicly_accessible"] is False
    assert request["MultiAZ"] is False and request["DeletionProtection"] is False
    assert request["BackupRetentionPeriod"] == 0
    # moto honours the identifier, subnet group and class; encryption is not a restore parameter,
    # the drill inherits production's (and its key).
    drill = aws.describe(DRILL)
    assert drill is not None
    assert drill["DBSubnetGroup"]["DBSubnetGroupName"] == args["db_subnet_group_name"]
    assert drill["DBInstanceClass"] == args["db_instance_class"]
    assert drill["PubliclyAccessible"] is False
    assert drill["StorageEncrypted"] is prod["storage_encrypted"] is True
    assert drill["KmsKeyId"] == prod["kms_key_id"]
    assert "storage_encrypted" not in args and "StorageEncrypted" not in request


def test_drill_instance_class_overrides_productions(aws):
    _, args, request = restored(aws, db_migration_drill_instance_class="db.t4g.medium")
    assert request["DBInstanceClass"] == args["db_instance_class"] == "db.t4g.medium"
    assert aws.describe(DRILL)["DBInstanceClass"] == "db.t4g.medium"
    assert aws.describe(PROD)["DBInstanceClass"] == "db.m6g.large"


def test_restored_instance_carries_exactly_the_drill_tags(aws):
    variables, _, _ = restored(aws)
    aws.log.calls.clear()
    args, result = run(TAG, variables)
    assert not result.failed, result.data
    assert args["db_instance_identifier"] == DRILL
    assert result["tags"] == TAGS
    arn = aws.describe(DRILL)["DBInstanceArn"]
    assert {t["Key"]: t["Value"] for t in aws.rds.list_tags_for_resource(ResourceName=arn)["TagList"]} == TAGS
    # Only the drill instance was touched (production's own tags stay).
    assert {p.get("ResourceName") for _, p in aws.writes()} == {arn}
    prod_arn = aws.describe(PROD)["DBInstanceArn"]
    prod_tags = {t["Key"]: t["Value"] for t in aws.rds.list_tags_for_resource(ResourceName=prod_arn)["TagList"]}
    assert prod_tags == {"gearlift:environment": "production", "gearlift:backup": "true"}


def test_rds_instance_cannot_send_tags_with_a_point_in_time_restore(aws):
    """Why the restore task leaves tags to the next task: amazon.aws.rds_instance passes a
    restore's tags on as a dict, which botocore refuses for RestoreDBInstanceToPointInTime -
    even the default {} - so nothing is restored (the drill could never run)."""
    variables = before_the_restore(aws)
    module, args = task_args(TASKS, RESTORE, variables)
    for tags in (TAGS, {}):
        result = run_main(MODULES[module], {**args, "tags": tags})
        assert result.failed
        assert "Invalid type for parameter Tags" in result["msg"]
        assert aws.describe(DRILL) is None


# ------------------------------------------------------------------ removal, never production


def test_remove_deletes_only_the_drill_instance_without_a_final_snapshot(aws):
    variables, _, _ = restored(aws)
    # moto copied production's deletion protection although the restore asked for none (RDS's
    # default too); turn it off as RDS would have it.
    moto_drill = moto.rds.models.rds_backends[DEFAULT_ACCOUNT_ID][REGION].databases[DRILL]
    assert moto_drill.deletion_protection is True
    moto_drill.deletion_protection = False
    before = aws.describe(PROD)
    aws.log.calls.clear()
    args, result = run(REMOVE, variables)
    assert not result.failed, result.data
    assert result["changed"] is True
    [delete] = aws.log.params("DeleteDBInstance")
    assert delete["DBInstanceIdentifier"] == args["db_instance_identifier"] == DRILL
    assert delete["SkipFinalSnapshot"] is True
    assert "FinalDBSnapshotIdentifier" not in delete
    assert [name for name, _ in aws.writes()] == ["DeleteDBInstance"]
    assert aws.describe(DRILL) is None
    assert aws.describe(PROD) == before


def test_remove_after_a_failed_restore_deletes_nothing(aws):
    """The always block runs also when no drill instance was made: nothing to delete, and
    certainly not production."""
    variables = before_the_restore(aws)
    aws.log.calls.clear()
    _, result = run(REMOVE, variables)
    assert not result.failed, result.data
    assert result["changed"] is False
    assert aws.writes() == []
    assert aws.describe(PROD) is not None


def test_no_call_of_the_pitr_path_writes_to_production(aws):
    variables, _, _ = restored(aws)
    calls = list(aws.log.calls)
    _, result = run(TAG, variables)
    assert not result.failed, result.data
    moto.rds.models.rds_backends[DEFAULT_ACCOUNT_ID][REGION].databases[DRILL].deletion_protection = False
    _, result = run(REMOVE, variables)
    assert not result.failed, result.data
    prod_arn = aws.describe(PROD)["DBInstanceArn"]
    for name, params in calls + aws.log.calls:
        if name.startswith(READS):
            continue
        targets = {params.get("DBInstanceIdentifier"), params.get("TargetDBInstanceIdentifier")}
        assert PROD not in targets and prod_arn != params.get("ResourceName"), (name, params)


def test_inputs_refuse_production_as_the_drill_instance_in_any_case(aws):
    """RDS identifiers are case-insensitive and rds_instance lowercases them: a drill instance
    named like production in other letters would be production - restored over (modified) and
    then deleted without a final snapshot."""
    that = find_task(TASKS, INPUTS)["ansible.builtin.assert"]["that"]
    assert condition(that, drill_vars()) is True
    for name in (PROD, PROD.upper(), PROD.title()):
        assert condition(that, drill_vars(db_migration_drill_instance=name)) is False, name
    # What the remove task would do with such a name: production (check mode - nothing sent).
    variables = drill_vars(db_migration_drill_instance=PROD.upper())
    _, result = run(REMOVE, variables, check_mode=True)
    assert result["changed"] is True
    assert result["db_instance_identifier"] == PROD
    assert aws.writes() == []


def test_pitr_restores_and_never_creates_an_empty_instance():
    """Of the drill's rds_instance tasks, pitr runs the restore, the tagging and the removal."""
    tasks = [t for t in load_tasks(TASKS) if module_of(t) == "amazon.aws.rds_instance"]

    def runs(drill_from: str) -> list[str]:
        variables = drill_vars(db_migration_drill_from=drill_from)
        return [str(t["name"]) for t in tasks if "when" not in t or condition(t["when"], variables)]

    assert runs("pitr") == [RESTORE, TAG + " (exactly the drill's tags)", REMOVE]
    assert runs("dump") == [CREATE_EMPTY + " (the dump is loaded into it)", REMOVE]

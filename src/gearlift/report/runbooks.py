"""Runbooks: concise step lists that name the repository's playbooks (planned ones marked)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gearlift.report.inputs import DesignInputs

#: issue 5 (golden image pipeline): not in the repository yet
PLANNED = ("playbooks/bake_ami.yml", "playbooks/deploy.yml", "playbooks/patch.yml")


@dataclass(frozen=True)
class Runbook:
    id: str
    title: str
    when: str
    steps: tuple[str, ...]
    playbooks: tuple[tuple[str, bool], ...]  # (path, exists)


def runbooks(inputs: DesignInputs, repo: Path, inventory_arg: str) -> list[Runbook]:
    inv = f"-i {inventory_arg}"
    name = f"{inputs.project}-{inputs.environment}"

    def ref(*paths: str) -> tuple[tuple[str, bool], ...]:
        return tuple((p, (repo / p).is_file()) for p in paths)

    def planned(path: str) -> str:
        return path if (repo / path).is_file() else f"{path} (planned, issue 5: not in the repository yet)"

    return [
        Runbook(
            "cutover",
            "Cut over the database to RDS",
            "once, in an agreed window",
            (
                "A day ahead: lower the shop's DNS TTL to 60 s; check the JVM's networkaddress.cache.ttl <= 60 s.",
                f"ansible-playbook {inv} site.yml  (target built, guards pass)",
                f"ansible-playbook {inv} playbooks/migrate_db.yml --tags preflight  (checks only, changes nothing)",
                f"ansible-playbook {inv} playbooks/migrate_db.yml  (preflight, copy, replicate, verify)",
                f"ansible-playbook {inv} playbooks/migrate_db.yml --tags verify  (repeat until lag 0, checksums equal)",
                f"ansible-playbook {inv} playbooks/migrate_db.yml --tags cutover  (the switch; never runs untagged)",
                f"ansible-playbook {inv} playbooks/audit.yml; watch the ALB 5xx / latency alarms for an hour.",
                "Keep the on-premises source running for the rollback window.",
            ),
            ref("site.yml", "playbooks/migrate_db.yml", "playbooks/audit.yml"),
        ),
        Runbook(
            "rollback",
            "Roll back to the on-premises database",
            "after a failed cutover, inside the rollback window",
            (
                "Decide: the shop is failing on RDS and the source is still intact.",
                f"ansible-playbook {inv} playbooks/migrate_db.yml --tags rollback  (back to the source; "
                "never runs untagged)",
                f"ansible-playbook {inv} playbooks/migrate_db.yml --tags verify  (source and target compared again)",
                "Check the app servers' DB settings point at the source; raise DNS TTL back after the window.",
            ),
            ref("playbooks/migrate_db.yml"),
        ),
        Runbook(
            "patch",
            "Patch the fleet",
            "security updates daily (automatic); monthly re-bake; urgent CVEs at once (PCI 6.3.3: within a month)",
            (
                "Daily: unattended security upgrades on the hosts (hardening role, tag pci_6.3.3).",
                f"Monthly: bake a new golden image - {planned('playbooks/bake_ami.yml')}.",
                f"Roll it out: {planned('playbooks/deploy.yml')}, or ansible-playbook {inv} playbooks/fleet.yml "
                "with the new image (instance refresh keeps 90 % healthy, rolls back on failure).",
                "Urgent: AWS-RunPatchBaseline in rolling AZ batches with health gates - "
                f"{planned('playbooks/patch.yml')}.",
                f"Evidence: ansible-playbook {inv} playbooks/audit.yml, then regenerate this report.",
            ),
            ref("playbooks/fleet.yml", "playbooks/audit.yml", *PLANNED),
        ),
        Runbook(
            "restore",
            "Restore the database",
            "data loss, corruption, deletion, ransomware",
            (
                "Pick the restore time (before the damage; point-in-time restore reaches back "
                f"{inputs.db_backup_retention_days} days, AWS Backup monthly points further).",
                f"aws rds restore-db-instance-to-point-in-time --source-db-instance-identifier {name} "
                f"--target-db-instance-identifier {name}-restore --restore-time <UTC> (same subnet group, "
                "security group and parameter group).",
                "Check the restored data; then rename the instances (old one aside, restored one to "
                f"{name}) so the endpoint the app secret names stays the same.",
                f"ansible-playbook {inv} site.yml  (puts back the settings the playbooks own; guards check them)",
                f"ansible-playbook {inv} playbooks/audit.yml; record the real RPO / RTO as a drill figure.",
            ),
            ref("site.yml", "playbooks/audit.yml"),
        ),
        Runbook(
            "scale",
            "Scale for an event",
            "a sale, a campaign, a known traffic peak",
            (
                "In the inventory: raise gearlift_asg_max_size and add a gearlift_asg_peak_schedule action "
                "for the event (min / desired for the expected load).",
                f"ansible-playbook {inv} playbooks/fleet.yml  (or site.yml); the guards check the sizes.",
                "Check the WAF rate limit (gearlift_waf_rate_limit) suits the expected per-client rate.",
                "Regenerate this report to see the cost of the event capacity; remove the action afterwards.",
            ),
            ref("playbooks/fleet.yml", "site.yml"),
        ),
        Runbook(
            "rotate",
            "Rotate secrets",
            f"every {inputs.secret_rotation_days} days (app DB secret) and on any suspicion",
            (
                "RDS master password: managed and rotated by RDS in Secrets Manager; nothing to do.",
                f"App DB secret gearlift/{name}/app-db: rotated by the Lambda in "
                "gearlift_app_secret_rotation_lambda_arn; on demand: aws secretsmanager rotate-secret --secret-id "
                f"gearlift/{name}/app-db.",
                "Hosts read the secret at boot: an instance refresh (playbooks/fleet.yml) makes every host use "
                "the new one.",
                f"After the migration: delete gearlift/{name}/replication.",
            ),
            ref("playbooks/fleet.yml"),
        ),
    ]

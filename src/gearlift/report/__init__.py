"""The customer's solution design and PCI DSS evidence pack, generated from an inventory.

``python -m gearlift.report --inventory inventories/rehearsal --out reports/design`` reads the
inventory's ``gearlift_*`` settings (no AWS call), the audit results of ``playbooks/audit.yml``
and any rehearsal drill figures, and writes one self-contained HTML file and a Markdown twin.
"""

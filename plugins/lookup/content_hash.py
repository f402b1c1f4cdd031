# Copyright: gearlift contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The content hash of an image's inputs (files and directory trees, plus values), for rebuild decisions."""

from __future__ import annotations

DOCUMENTATION = r"""
name: content_hash
short_description: A sha256 over files, directory trees and values, independent of where they live
version_added: 0.1.0
description:
  - Hashes every file under each given path (its path relative to O(base), its bytes and whether it is
    executable) and each of O(values), in sorted order. The result changes exactly when an input's
    content changes, not with modification times or the checkout's location.
  - Caches and build output (C(__pycache__), C(*.pyc), tool caches, C(.molecule)) are left out.
  - Used by C(playbooks/bake_ami.yml) to reuse a golden image whose inputs are unchanged.
options:
  _terms:
    description: Files or directories, absolute or relative to O(base).
    type: list
    elements: path
    required: true
  base:
    description: The directory the inputs' labels are relative to (an input must lie under it).
    type: path
    required: true
  values:
    description: Strings that are inputs too (for example the source image id, settings as JSON).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: The golden image's inputs
  ansible.builtin.set_fact:
    inputs_hash: >-
      {{ lookup('gearlift.platform.content_hash', 'roles/hardening', 'roles/apache',
                base=playbook_dir ~ '/..', values=[source_image_id]) }}
"""

RETURN = r"""
_raw:
  description: One element, the sha256 in hex.
  type: list
  elements: str
"""

import os
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.gearlift.platform.plugins.module_utils.content_hash import ContentHashError, content_hash


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        unknown = set(kwargs) - {"base", "values"}
        if unknown:
            raise AnsibleLookupError(f"content_hash: unknown option(s) {', '.join(sorted(unknown))}")
        if not kwargs.get("base"):
            raise AnsibleLookupError("content_hash: base (the directory the inputs are relative to) is required")
        values = kwargs.get("values") or []
        if isinstance(values, str) or not isinstance(values, list):
            raise AnsibleLookupError("content_hash: values must be a list of strings")
        base = os.path.realpath(str(kwargs["base"]))
        roots: list[tuple[str, str]] = []
        for term in terms:
            path = os.path.realpath(os.path.join(base, str(term)))
            label = os.path.relpath(path, base).replace(os.sep, "/")
            if label == ".." or label.startswith("../"):
                raise AnsibleLookupError(f"content_hash: {term} is not under {base}")
            roots.append((path, label))
        try:
            return [content_hash(roots, [str(v) for v in values])]
        except ContentHashError as exc:
            raise AnsibleLookupError(f"content_hash: {exc}") from exc

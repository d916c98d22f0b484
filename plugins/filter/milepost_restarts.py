# Milepost: the services to restart after a role changed the files they read.
from __future__ import annotations

DOCUMENTATION = r"""
name: milepost_restarts
short_description: The services whose files a loop of tasks changed
description:
  - Takes registered loop results (each with C(results), as a looped task registers them)
    and returns the C(restart) services named by the items that changed, each once, in
    their order. An item says which services read it with C(restart) (a name or a list).
  - A result without C(results) (the task was skipped whole) adds nothing.
positional: _input
options:
  _input:
    description: The registered results of the looped tasks.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: PATCH | Restart the services whose managed files changed
  ansible.builtin.service:
    name: "{{ item }}"
    state: restarted
  loop: "{{ [__baseline_templates, __baseline_contents] | milepost_restarts }}"
"""

RETURN = r"""
_value:
  description: The services to restart.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError


def milepost_restarts(registered):
    if not isinstance(registered, list):
        raise AnsibleFilterError("milepost_restarts takes a list of registered loop results")
    services = []
    for result in registered:
        for item_result in (result or {}).get("results") or []:
            if not isinstance(item_result, dict) or not item_result.get("changed"):
                continue
            item = item_result.get("item")
            wanted = item.get("restart") if isinstance(item, dict) else None
            for name in [wanted] if isinstance(wanted, str) else wanted or []:
                if name not in services:
                    services.append(name)
    return services


class FilterModule:
    def filters(self):
        return {"milepost_restarts": milepost_restarts}

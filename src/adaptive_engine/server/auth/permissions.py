"""The permission catalogue and the built-in roles.

A permission is ``<resource>:<action>``. ``admin`` grants everything. Permissions given by a team's role
apply to the use cases shared with that team; global permissions (managing users, teams, roles,
the model registry and compute pools) come from the roles a user holds in any team.
"""

from __future__ import annotations

ADMIN = "admin"

CATALOGUE: dict[str, str] = {
    ADMIN: "Everything, on every use case and the whole deployment",
    "use_case:create": "Create use cases",
    "use_case:read": "See a use case, its models, interactions, feedback, datasets, recipes, jobs and A/B tests",
    "use_case:write": "Change a use case's settings, attach and detach models, link feedback keys",
    "use_case:share": "Share a use case with teams and remove shares",
    "inference:run": "Call chat, completions and embeddings on a use case",
    "feedback:write": "Log interactions and feedback, register feedback keys",
    "dataset:write": "Upload and delete datasets",
    "recipe:write": "Upload, update and delete recipes",
    "job:run": "Run and cancel jobs",
    "ab_test:write": "Create and cancel A/B tests",
    "grader:write": "Create, change, lock and delete graders",
    "model:deploy": "Deploy, update and terminate models on a use case",
    "model:register": "Add models to the registry (external, hub, trained)",
    "compute_pool:manage": "Resize compute pool partitions",
    "integration:manage": "Create, change and delete a team's integrations",
    "team:manage": "Create teams and manage their members",
    "role:manage": "Create roles",
    "user:manage": "Create and delete users, and manage any user's API keys",
}

_EDITOR = [p for p in CATALOGUE if p not in {ADMIN, "team:manage", "role:manage", "user:manage", "compute_pool:manage"}]

BUILTIN_ROLES: dict[str, tuple[str, list[str]]] = {
    "admin": ("Admin", [ADMIN]),
    "editor": ("Editor", _EDITOR),
    "viewer": ("Viewer", ["use_case:read"]),
}

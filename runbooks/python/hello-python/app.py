"""`hello-python`: hello-durable, written in Python with componentize-py.

The same shape as the Rust reference runbook `hello-durable`:

1. `plan` picks a change ticket number (journaled randomness) and the time
   the run started (journaled clock).
2. `announce` uses `plan`'s output and logs it.
3. A durable sleep of `pause_seconds` (`clock.sleep`).
4. `verify` uses both earlier outputs and reports how long the pause took.

Replay: every step goes through `_step`, which calls `steps.begin` first. A
step the journal already holds as completed returns its journaled JSON
without running its body; one that failed for good re-raises its journaled
error; otherwise the body runs, and its output is journaled with
`steps.complete` (or the failure reported with `steps.fail`, which retries
retryable errors as the policy says). Everything nondeterministic (time,
randomness) is read through the journaled `drover:runbook` imports, never
through Python's `time`/`random`.
"""

import json
import traceback

import wit_world
from wit_world import Action
from wit_world.imports import clock, log, random, steps, types
from componentize_py_types import Err

NAME = "hello-python"
VERSION = "0.1.0"

# Retry::default() of the Rust SDK: 3 attempts, backoff 500 ms .. 30 s.
DEFAULT_RETRY = steps.RetryPolicy(max_attempts=3, initial_backoff_ms=500, max_backoff_ms=30_000)


class StepError(Exception):
    """Raised by a step body to fail the attempt with a drover error."""

    def __init__(self, code: str, message: str, retryable: bool = False, resource=None):
        super().__init__(message)
        self.error = types.Error(code=code, message=message, retryable=retryable, resource=resource)


def _decode(key: str, text: str):
    try:
        return json.loads(text)
    except ValueError as e:
        raise Err(types.Error(
            code="output-type-changed",
            message=f"the journaled output of step '{key}' is not JSON: {e}",
            retryable=False,
            resource=None,
        ))


def _step(key: str, body, retry: steps.RetryPolicy = DEFAULT_RETRY):
    """Run `body(attempt)` as durable step `key`; return its (journaled) output."""
    started = steps.begin(key, retry)
    if isinstance(started, steps.Started_Completed):
        return _decode(key, started.value)          # replay: do not run the body
    if isinstance(started, steps.Started_Failed):
        raise Err(started.value)                    # failed for good earlier
    attempt = started.value                         # Started_Run
    while True:
        try:
            output = json.dumps(body(attempt), separators=(",", ":"))
        except StepError as e:
            error = e.error
        except Err as e:                            # a capability's error, raised as-is
            error = e.value
        except Exception as e:                      # a bug in the body: not retryable
            error = types.Error(code="step-raised", message=f"step '{key}': {type(e).__name__}: {e}",
                                retryable=False, resource=None)
        else:
            steps.complete(key, output)
            # Hand back what a replay would hand back: the journaled JSON, decoded.
            return _decode(key, output)
        after = steps.fail(key, error)
        if isinstance(after, steps.AfterFailure_Retry):
            attempt = after.value
            continue
        raise Err(after.value)                      # AfterFailure_GiveUp


def _info(message: str, **fields: str) -> None:
    log.event(log.Level.INFO, message, [(k, str(v)) for k, v in fields.items()])


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.RunbookInfo:
        # Must not call any import.
        return types.RunbookInfo(
            name=NAME,
            version=VERSION,
            description=(
                "Plans a change ticket, announces it, sleeps durably for pause_seconds, "
                "then verifies using the earlier steps' outputs. Shows checkpointing and "
                "resume, from a runbook written in Python (componentize-py)."
            ),
            params=[
                types.ParamSpec(name="target", description="Who is greeted in the announcement",
                                type=types.ParamType.STRING, default=json.dumps("on-call"), secret=False),
                types.ParamSpec(name="pause_seconds", description="Length of the durable sleep, in seconds",
                                type=types.ParamType.INTEGER, default="2", secret=False),
            ],
            capabilities=[],
        )

    def run(self, params: str) -> str:
        try:
            return self._run(params)
        except Err:
            raise
        except Exception as e:
            # An uncaught Python exception would otherwise trap the instance:
            # componentize-py prints the traceback to stderr and panics, and
            # the agent keeps only the Rust panic line. Return it as the run's
            # error instead, traceback included. (Host traps such as a cancel
            # or a non-determinism stop are not Python exceptions: they
            # unwind past this handler untouched.)
            raise Err(types.Error(
                code="python-exception",
                message=f"{type(e).__name__}: {e}\n" + traceback.format_exc(limit=8)[-3000:],
                retryable=False,
                resource=None,
            ))

    def _run(self, params: str) -> str:
        p = json.loads(params)
        target = p["target"]
        pause_seconds = int(p["pause_seconds"])

        plan = _step("plan", lambda a: {
            "ticket": "CHG-%06d" % (random.random_u64() % 1_000_000),
            "started_unix": clock.now().seconds,
        })

        def announce(a):
            text = f"hello {target}, change {plan['ticket']} is under way"
            _info(text, ticket=plan["ticket"])
            return text

        announcement = _step("announce", announce)

        clock.sleep(pause_seconds * 1000)

        def verify(a):
            paused = clock.now().seconds - plan["started_unix"]
            if paused < pause_seconds:
                raise StepError("clock-went-backwards",
                                f"only {paused} s passed during a {pause_seconds} s pause")
            return paused

        paused = _step("verify", verify)
        return json.dumps({"ticket": plan["ticket"], "message": announcement, "paused_seconds": paused})

    def finalize(self, action: Action) -> None:
        # hello-python registers no cleanups or undos.
        return None

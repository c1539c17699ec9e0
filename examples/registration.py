"""Sessions and file registration, the ONE way: numbers from the server, atomic requests.

Runs anywhere, with nothing else started: it brings up its own ``LocalStack`` (the reference
server on a free loopback port, in a temporary directory). The administrator makes the seeded
``researcher`` a member of a lab and registers the vocabulary (two dataset types and a data
format); then the researcher:

1. creates a session (the server allocates its number) and its local folder;
2. writes two ALF files and a stray file, plans the registration (a dry run) and registers;
3. registers again, unchanged (the server answers ``unchanged``; files older than two seconds
   are not even read again: their hashes are cached);
4. protects the trials dataset with a tag, changes the file, and is refused (412, nothing
   registered); with ``force=True`` the file moves into today's revision folder;
5. drops a ``create_me.flag`` in a second session folder and lets ``create_sessions`` do it.

::

    uv run python examples/registration.py
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import anyio

from provena_like import ProvenaClient
from provena_like.modules.registration import RegistrationResult
from provena_like.testing import LocalStack
from provena_like.testing.registration import seed_registration

LAB, SUBJECT, EXT = "cortexlab", "KS023", ".npy"


def show(title: str, result: RegistrationResult) -> None:
    print(f"{title}:")
    for f in result:
        where = f" (moved {f.moved_from} -> {f.moved_to})" if f.moved_to else ""
        answer = f" [{f.response.status}]" if f.response is not None else ""
        print(f"  {f.status:<10} {f.rel_path or f.path.name}{answer}{where}")
        if f.reason:
            print(f"             {f.reason}")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        async with LocalStack(s3=False) as stack:
            setup = await seed_registration(
                stack,
                lab=LAB,
                subject=SUBJECT,
                dataset_types=[
                    ("trials.table", "*trials.table*"),
                    ("wheel.position", "*wheel.position*"),
                ],
                data_format=("npy", EXT),
                tags=[("frozen", True)],
            )
            async with stack.client() as pv:
                pv.registration.cache_dir = Path(tmp) / "cache"
                await walk_through(pv, root, setup.tags[0].id)


async def walk_through(pv: ProvenaClient, root: Path, frozen_tag: str) -> None:
    reg = pv.registration
    ses = await reg.create_session(SUBJECT, root=root, procedures=["Behavior training/tasks"])
    assert ses.path is not None
    print(f"created session {ses.session} (number {ses.number} from the server) at {ses.path}")

    trials = ses.path / "alf" / "_ibl_trials.table.npy"
    wheel = ses.path / "alf" / "_ibl_wheel.position.npy"
    stray = ses.path / "alf" / "notes.txt"
    for path, data in ((trials, b"trials v1"), (wheel, b"wheel"), (stray, b"notes")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    files = [trials, wheel, stray]

    show("dry run", await reg.register_files(files, versions="1.0", dry_run=True))
    first = await reg.register_files(files, versions="1.0")
    show("registered", first)
    show("again, unchanged", await reg.register_files(files, versions="1.0"))

    dataset_id = first[0].response.dataset.id
    await pv.registry_client.tag_dataset(dataset_id, frozen_tag)  # any lab member may tag
    print(f"protected dataset {dataset_id} with the tag 'frozen'")
    trials.write_bytes(b"trials v2")
    show("protected, without force", await reg.register_files([trials, wheel]))
    show("protected, with force", await reg.register_files([trials, wheel], force=True))

    today = dt.datetime.now(dt.UTC).date().isoformat()
    async for d in reg.iter_datasets(subject=SUBJECT):
        print(f"  dataset {d.rel_path:<45} revision {d.revision or '-':<12} default {d.default}")
    assert (ses.path / "alf" / f"#{today}#" / trials.name).exists()

    second = root / LAB / "Subjects" / SUBJECT / ses.session.date.isoformat() / "002"
    (second / "alf").mkdir(parents=True)
    (second / "alf" / "_ibl_wheel.position.npy").write_bytes(b"rig 2")
    (second / "create_me.flag").touch()
    for outcome in await reg.create_sessions(root, register_files=True):
        done = outcome.registration
        n = len(done.files.registered) if done and done.files else 0
        print(f"flag {outcome.session_path}: removed={outcome.flag_removed}, {n} files")

    weighing = await reg.register_weight(SUBJECT, 21.4)
    print(f"weighed {SUBJECT}: {weighing.record['grams']} g at {weighing.record['time']}")


if __name__ == "__main__":
    anyio.run(main)

"""Patching registered files in every repository that holds them: staged, verified, resumable.

Runs anywhere, with nothing else started: it brings up its own ``LocalStack`` (the reference
server and its object store on free loopback ports, in a temporary directory). The
administrator makes the seeded ``researcher`` a lab member, registers the vocabulary and two
repositories: an S3 one in the server's bucket and a POSIX one (a "lab server", mounted here
in a temp folder). Then the researcher:

1. registers two ALF files with a file record in each repository and puts their bytes there;
2. fixes one file locally and plans a patch (a dry run: per repository, old path -> staged);
3. patches: staged in both repositories, read back, one commit, old objects removed;
4. reads the file back from each repository at the path the server's records give, and
   lists each repository: only the objects the records point to are left;
5. patches the same files again: nothing to do (the bytes are already the registered ones);
6. protects the trials file (a protected tag freezes its revision), fixes it once more and
   patches with ``force=True``: the new bytes become a new revision, staged and verified in
   both repositories and made the default by the commit; the protected revision stays.

::

    uv run python examples/patching.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio

from provena_like.repositories import RepositoryResolver, path_from_dataset
from provena_like.testing import LocalStack
from provena_like.testing.registration import seed_registration, seed_repositories

LAB, SUBJECT, EXT = "cortexlab", "KS023", ".npy"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data, mount = Path(tmp) / "data", Path(tmp) / "lab-server"
        mount.mkdir()
        async with LocalStack() as stack:
            setup = await seed_registration(
                stack,
                lab=LAB,
                subject=SUBJECT,
                dataset_types=[("trials.table", "*trials.table*"), ("wheel.position", "*wheel*")],
                data_format=("npy", EXT),
                tags=[("released", True)],
            )
            s3, posix = await seed_repositories(stack, f"{LAB}_members")
            async with stack.client() as pv:
                pv.patcher.journal_dir = Path(tmp) / "journals"
                pv.patcher.local_roots[posix] = mount
                created = await pv.registration.create_session(SUBJECT, root=data)
                assert created.path is not None
                trials = created.path / "alf" / f"_ibl_trials.table{EXT}"
                wheel = created.path / "alf" / f"_ibl_wheel.position{EXT}"
                trials.parent.mkdir(parents=True)
                trials.write_bytes(b"trials, with a bug")
                wheel.write_bytes(b"wheel positions")

                # 1. registered in both repositories, bytes put in both
                for handle in (posix, s3):
                    await pv.registration.register_files([trials, wheel], repository=handle)
                resolver = RepositoryResolver(pv.registry_client, local_roots={posix: mount})
                async with await resolver.open([s3, posix], access="write") as repos:
                    async for dataset in pv.registration.iter_datasets(session=created.item.id):
                        local = created.path / dataset.rel_path
                        for handle in (s3, posix):
                            await repos[handle].put(local, path_from_dataset(dataset, handle))
                    print(f"registered and stored 2 files in {s3} (S3) and {posix} (POSIX)")

                    # 2. the fix, and the plan
                    trials.write_bytes(b"trials, fixed")
                    plan = await pv.patcher.patch_files([trials, wheel], dry_run=True)
                    print("dry run:")
                    for handle, planned in plan.plan.repositories.items():
                        for _, location in planned:
                            print(f"  {handle}: {location.old_path}\n    -> {location.staged_path}")
                    print(f"  unchanged: {[p.name for p in plan.plan.unchanged]}")

                    # 3. the patch
                    outcome = await pv.patcher.patch_files([trials, wheel])
                    removed = len(outcome.cleaned)
                    print(
                        f"patch {outcome.patch_id}: {outcome.step}, {removed} old objects removed"
                    )

                    # 4. what readers get, and what is left in each repository
                    assert outcome.result is not None
                    dataset = outcome.result.files[0].dataset
                    for record in dataset.files:
                        target = Path(tmp) / "read" / record.repository.replace("/", "_")
                        await repos[record.repository].get(
                            record.relative_path, target, sha256=dataset.sha256
                        )
                        print(f"  {record.repository} serves {target.read_bytes()!r}")
                    for handle in (s3, posix):
                        listed = [o.path async for o in repos[handle].list()]
                        print(f"  {handle} holds {len(listed)} objects")

                # 5. again: nothing to do
                again = await pv.patcher.patch_files([trials, wheel])
                print(f"again: {again.step}, {len(again.plan.unchanged)} unchanged")

                # 6. a protected revision: force makes the new bytes a new default revision
                released = setup.tags[0].id
                await pv.registry_client.tag_dataset(str(dataset.id), released)
                trials.write_bytes(b"trials, fixed twice")
                forced = await pv.patcher.patch_files([trials], force=True)
                (planned,) = forced.plan.files
                assert planned.new_dataset is not None
                new = await pv.registry_client.get_registered_dataset(planned.new_dataset)
                old = await pv.registry_client.get_registered_dataset(planned.dataset)
                print(
                    f"force: revision {new.revision!r} is the default ({new.default}); the "
                    f"protected revision {old.revision!r} stays ({old.sha256 == dataset.sha256})"
                )


if __name__ == "__main__":
    anyio.run(main)

"""Archiving raw data (map-ephys's workflow): publish, discover, retrieve, against LocalStack.

Runs anywhere, with nothing else started: it brings up its own ``LocalStack`` (the reference
server on a free loopback port, in a temporary directory). The administrator registers two
transfer collections of the server - the rig's local endpoint (a directory of this machine)
and the archive ("petrel") - and a ``raw-ephys`` storage location on the archive with the
layout ``{lab}/{subject}/{date}/{number:03d}``, writable by the lab. Then the researcher:

1. records two sessions and writes their raw files in the rig's data folder, laid out like
   the archive (plus a processed file that is not raw and stays behind);
2. publishes them: one checksum-verified task, each file recorded after it succeeded;
3. publishes again: nothing is sent; retrieving onto the originals is refused;
4. loses the records, and discovers them again from the archive (a stray file is reported);
5. retrieves one session to a second folder: identical bytes.

::

    uv run python examples/archive.py
"""

from __future__ import annotations

import anyio

from provena_like.models.transfer_collections import collection_id
from provena_like.modules.archive import ArchiveRefused
from provena_like.repositories import LocalEndpoint
from provena_like.testing import LocalStack
from provena_like.testing.registration import seed_registration

LAB, SUBJECT = "cortexlab", "KS023"


async def main() -> None:
    async with LocalStack(s3=False) as stack:
        assert stack.settings is not None
        root = stack.settings.resolved_transfer_roots[0]
        await seed_registration(
            stack, lab=LAB, subject=SUBJECT, dataset_types=[], data_format=("bin", ".bin")
        )
        collections = {}
        async with stack.client(stack.admin.username) as admin:
            for name in ("rig", "petrel"):
                (root / name).mkdir(parents=True)
                item = await admin.registry_client.create_item(
                    {
                        "subtype": "transfer_collection",
                        "record": {"name": name, "root": str(root / name)},
                        "general": ["data-write"],
                    }
                )
                collections[name] = item.id
            await admin.registry_client.create_item(
                {
                    "subtype": "storage_location",
                    "record": {
                        "name": "petrel_raw_ephys",
                        "kind": "raw-ephys",
                        "collection": collection_id(collections["petrel"]),
                        "root": "/raw",
                        "layout": "{lab}/{subject}/{date}/{number:03d}",
                        "patterns": ["raw_ephys_data/*"],
                    },
                    "groups": {f"{LAB}_members": ["data-write"]},
                }
            )
        rig = LocalEndpoint(collection_id(collections["rig"]), root / "rig")
        async with stack.client() as pv:
            pv.archive.poll = 0.1
            # 1. two sessions of one day, their raw files on the rig
            subject = (await pv.registry_client.list_items(subtype="subject")).items[0]
            sessions = []
            for _ in range(2):
                ses = await pv.registry_client.create_session(
                    {"subject": subject.id, "date": "2026-12-06"}
                )
                number = ses.record["number"]
                folder = rig.directory / f"{LAB}/{SUBJECT}/2026-12-06/{number:03d}"
                for probe in ("probe00", "probe01"):
                    raw = folder / "raw_ephys_data" / probe / "_spikeglx_ephysData_g0_t0.ap.bin"
                    raw.parent.mkdir(parents=True)
                    raw.write_bytes(f"{ses.id} {probe} ".encode() * 1000)
                (folder / "alf").mkdir()
                (folder / "alf" / "spikes.times.npy").write_bytes(b"processed, not raw")
                sessions.append(ses.id)

            # 2. publish: one task, every file recorded after it succeeded
            published = await pv.archive.publish("raw-ephys", sessions=sessions, local=rig)
            print(f"published {published.count('archived')} files in tasks {published.tasks}")
            # 3. again: nothing new is sent
            again = await pv.archive.publish("raw-ephys", sessions=sessions, local=rig)
            print(f"again: {again.count('already')} already archived, tasks {again.tasks}")

            # retrieving onto the originals they were published from is refused
            try:
                await pv.archive.retrieve("raw-ephys", dest=rig.directory, local=rig)
            except ArchiveRefused as exc:
                print(f"retrieve onto the originals refused: {len(exc.paths)} files untouched")

            # 4. the records lost; discover rebuilds them and reports a stray file
            location = (await pv.archive.locations("raw-ephys"))[0]
            for session in sessions:
                await pv.archive.records.delete_archived_files(location.id, session=session)
            (root / "petrel" / "raw" / "README.txt").write_text("not in the layout")
            found = await pv.archive.discover("raw-ephys", local=rig)
            print(f"discover rebuilt {found.count('archived')} records")
            for stray in found.unmatched:
                print(f"  unmatched: {stray.path} ({stray.reason})")

            # 5. retrieve elsewhere; onto the originals it is refused
            restore = rig.directory / "restore"
            back = await pv.archive.retrieve(
                "raw-ephys", session=sessions[0], dest=restore, local=rig
            )
            same = all(
                (restore / f.path).read_bytes() == (rig.directory / f.path).read_bytes()
                for f in back.files
            )
            print(f"retrieved {back.count('retrieved')} files, identical bytes: {same}")


if __name__ == "__main__":
    anyio.run(main)

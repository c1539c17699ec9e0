# %% [markdown]
# # Working with one dataset: `InteractiveDataset`
#
# A notebook in the "py:percent" format: in VS Code each `# %%` line starts a cell ("Run
# Cell"); Jupyter opens it as a notebook through Jupytext. It also runs whole, as a script:
#
#     uv run python examples/interactive_walkthrough.py
#
# Each cell defines one step as an `async def`. Notebooks accept `await` at the top level,
# so after running a cell, run its step with the `await ...` line at the end of the cell
# (it is a comment so that this file stays a valid script). The steps keep what they make
# in module globals (`pv`, `ds`, `v2`) for you to explore in cells of your own.
# `main()` at the bottom runs every step in order; that is what the script does.
#
# The first step starts a throw-away `LocalStack` (the reference server and an S3 object
# store on free loopback ports) and prepares a dataset to look at. Against a real server,
# use `pv = ProvenaClient.from_env()` after `provena-like login`, and the handle of a
# dataset you can read.

# %%
from __future__ import annotations

import asyncio
import csv
import statistics
import tempfile
from pathlib import Path

import anyio
import httpx
from cloudpathlib import S3Path

from provena_like import ProvenaClient
from provena_like.modules import InteractiveDataset
from provena_like.testing import LocalStack

stack: LocalStack
pv: ProvenaClient
HANDLE: str
ds: InteractiveDataset
v2: InteractiveDataset


# %%
def sample_record(org_id: str) -> dict[str, object]:
    """A minimal dataset record: associations, approvals, dataset_info."""
    not_needed = {"relevant": False, "obtained": False}
    return {
        "associations": {"organisation_id": org_id},
        "approvals": {
            "ethics_registration": not_needed,
            "ethics_access": not_needed,
            "indigenous_knowledge": not_needed,
            "export_controls": not_needed,
        },
        "dataset_info": {
            "name": "Lagoon temperatures",
            "description": "Hourly water temperature at two lagoon sites.",
            "access_info": {"reposited": True},
            "publisher_id": org_id,
            "created_date": "2024-02-01",
            "published_date": "2024-03-01",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["lagoon", "temperature"],
        },
    }


def write_files(root: Path) -> None:
    """A README and a CSV table (blocking: called in a worker thread)."""
    (root / "raw").mkdir(parents=True)
    (root / "README.md").write_text("# Lagoon temperatures\n")
    rows = ["site,hour,temp_c"] + [
        f"{site},{hour},{24 + 0.1 * hour + (0.5 if site == 'B' else 0):.2f}"
        for site in "AB"
        for hour in range(24)
    ]
    (root / "raw" / "temps.csv").write_text("\n".join(rows) + "\n")


async def start() -> None:
    """Start a local stack and prepare a dataset with two files."""
    global stack, pv, HANDLE
    stack = LocalStack()
    await stack.start()
    pv = stack.client()  # signed in as the seeded "researcher"; opens on first use
    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": "Lagoon Research Station"}}
    )
    minted = await pv.datastore.mint(sample_record(org.id))
    with tempfile.TemporaryDirectory() as tmp:
        await anyio.to_thread.run_sync(write_files, Path(tmp))
        result = await minted.upload(tmp)
    result.raise_for_failures()
    HANDLE = minted.id
    print(f"stack at {stack.url}; dataset {HANDLE} with {len(result.ok)} files")


# await start()

# %% [markdown]
# ## Open the dataset and look at its metadata
#
# `pv.datastore.interactive(handle)` fetches the dataset: its record (the collection format,
# as typed pydantic models), your roles, its storage location, version links and release
# status.


# %%
async def open_dataset() -> None:
    global ds
    ds = await pv.datastore.interactive(HANDLE)
    print(ds)
    info = ds.record.dataset_info
    print("name:        ", info.name)
    print("keywords:    ", info.keywords)
    print("licence:     ", info.license)
    print("organisation:", ds.record.associations.organisation_id)
    print("my roles:    ", ds.dataset.roles)
    print("stored at:   ", ds.dataset.storage.s3_uri)
    print("version:     ", ds.dataset.versioning)


# await open_dataset()

# %% [markdown]
# ## List its files
#
# The manifest: every file registered by an upload, with its size and sha256.


# %%
async def list_files() -> None:
    for entry in await ds.list_files():
        print(f"{entry.path:<16} {entry.size:>6} B  sha256 {entry.sha256[:12]}…")
    raw = [entry.path async for entry in ds.iter_files(prefix="raw/")]
    print("under raw/:", raw)


# await list_files()

# %% [markdown]
# ## Read a CSV through cloudpathlib
#
# `ds.path()` is a `cloudpathlib.S3Path` signed with the dataset's scoped (read) credentials,
# so it works like a local path. cloudpathlib is blocking: in async code call it through a
# worker thread (`anyio.to_thread.run_sync`). In a notebook cell of your own you may call it
# directly (`root.iterdir()`), at the price of blocking the kernel's event loop meanwhile.


# %%
def mean_by_site(path: S3Path) -> dict[str, float]:
    """Mean temperature per site, read from an S3Path (blocking)."""
    by_site: dict[str, list[float]] = {}
    with path.open() as fh:
        for row in csv.DictReader(fh):
            by_site.setdefault(row["site"], []).append(float(row["temp_c"]))
    return {site: round(statistics.fmean(values), 2) for site, values in by_site.items()}


async def read_with_cloudpathlib() -> None:
    root = await ds.path()
    names = await anyio.to_thread.run_sync(lambda: sorted(p.name for p in root.iterdir()))
    print("dataset root:", names)  # metadata.json is the server's copy of the record
    table = await ds.path("raw/temps.csv")
    print("mean °C by site:", await anyio.to_thread.run_sync(mean_by_site, table))


# await read_with_cloudpathlib()

# %% [markdown]
# ## Share one file with a presigned URL
#
# Anyone holding the URL can GET that one file until it expires (here, five minutes).


# %%
async def share_a_file() -> None:
    link = await ds.presigned_url("raw/temps.csv", expires_in=300)
    print(f"{link.path} until {link.expires_at:%H:%M:%S} UTC")
    async with httpx.AsyncClient() as http:  # no credentials: the URL is enough
        response = await http.get(link.url)
    print(response.status_code, response.text.splitlines()[:2])


# await share_a_file()

# %% [markdown]
# ## Change the metadata, with a reason
#
# Records are pydantic models: `model_copy(update=...)` makes a changed copy. The update
# sends the revision `ds` was read at, so if someone else changed the dataset meanwhile it
# fails with `PreconditionFailed` (412) instead of overwriting their change: then
# `await ds.refresh()` and apply your change again.


# %%
async def update_metadata() -> None:
    info = ds.record.dataset_info.model_copy(
        update={
            "keywords": [*ds.record.dataset_info.keywords, "hourly"],
            "purpose": "Baseline for the 2024 restoration work.",
        }
    )
    before = ds.dataset.revision
    await ds.update_metadata(
        ds.record.model_copy(update={"dataset_info": info}), reason="add purpose and keyword"
    )
    print(f"revision {before} → {ds.dataset.revision}; keywords {ds.record.dataset_info.keywords}")


# await update_metadata()

# %% [markdown]
# ## History and revert
#
# Every change is a history entry, newest first. Reverting restores an entry's metadata
# as a new entry: nothing is erased.


# %%
async def history_and_revert() -> None:
    history = await ds.history()
    for entry in history:
        when = f"{entry.time:%H:%M:%S}"
        print(f"#{entry.id} rev {entry.revision} {when} {entry.user}: {entry.reason}")
    created = history[-1]
    await ds.revert_metadata(created.id, reason="purpose not agreed yet")
    print("after revert: purpose =", ds.record.dataset_info.purpose)
    print("newest entry:", (await ds.history())[0].reason)


# await history_and_revert()

# %% [markdown]
# ## A new version
#
# `version()` mints the next version: a new handle linked to this one (`previous`/`next`),
# with the same metadata. `copy_files=True` copies the objects and manifest server-side;
# this version's files stay as they are.


# %%
async def new_version() -> None:
    global v2
    v2 = await ds.version(reason="recalibrated sensors", copy_files=True)
    print(f"{ds.id} → next {ds.dataset.versioning.next}")
    links = v2.dataset.versioning
    print(f"{v2.id}: version {links.version}, previous {links.previous}")
    print("files in the new version:", [entry.path for entry in await v2.list_files()])


# await new_version()

# %% [markdown]
# ## Clean up


# %%
async def stop() -> None:
    await pv.aclose()
    await stack.stop()
    print("stack stopped")


# await stop()

# %%
STEPS = [
    start,
    open_dataset,
    list_files,
    read_with_cloudpathlib,
    share_a_file,
    update_metadata,
    history_and_revert,
    new_version,
]


async def main() -> None:
    """Every step in order (what running this file as a script does)."""
    try:
        for step in STEPS:
            print(f"\n== {step.__name__}")
            await step()
    finally:
        if "stack" in globals():
            await stop()


def _event_loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


if __name__ == "__main__" and not _event_loop_running():  # a notebook: `await main()`
    anyio.run(main)

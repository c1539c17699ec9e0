"""L3: the user's jobs, composed from the L2 clients and the storage engine."""

from provena_like.modules.datastore import Datastore
from provena_like.modules.interactive import InteractiveDataset, TransferDefaults

__all__ = ["Datastore", "InteractiveDataset", "TransferDefaults"]

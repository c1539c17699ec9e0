"""The docstring examples that are compiled but not run, each with the reason.

Every other ```python block in a docstring of ``provena_like/`` runs in
``tests/docs/test_docstring_examples.py``; an example that can run should leave this list.
"""

from __future__ import annotations

S3_CREDS = "needs scoped S3 credentials for a dataset's prefix (or their provider)"
ENGINE = "needs an open TransferEngine (or its S3Requests) on a dataset's prefix"
READER_AUTH = "needs an AuthManager, TokenStore, httpx client or prompt the reader set up"
SERVER = "server internals: needs the server's app, settings or database session"
PRIVILEGED = "needs an administrator or a reviewer; the examples run as a plain user"
SECRET = "reads a secret (an access token, a client secret) from the reader's environment"
REVIEWER = "names a reviewer, rob, whom the test stack doesn't have (approving needs rob too)"
HISTORY_ID = "uses a history entry id that belongs to another dataset"
L2_DATASET = "its `ds` is the L2 Dataset (with a revision), not the InteractiveDataset given"
READER_OBJECTS = (
    "continues other code: uses objects (an item, a path, a core, ...) it takes as given"
)
ITEM_STATE = (
    "needs an item in another state than a fresh dataset (a plain item, a locked one, an"
    " owner and a group named in the example)"
)
HOST = "talks to provena.example.org, a placeholder host"
LAB_MEMBER = (
    "needs a subject of a lab whose group the user belongs to (only an administrator adds"
    " group members)"
)

GLOBUS = (
    "talks to a Globus transfer service: real Globus (not reachable from the tests) or the"
    " reference server's /v0.10/ routes; tests/clients_transfer runs these calls against"
    " globus-sdk's registered responses"
)

GLOBUS_COLLECTION = (
    "names a transfer collection by a UUID the test stack doesn't have (tests/crawl_jobs"
    " crawls collections it registers)"
)
S3_REPO = "needs an open S3Repository on a dataset's prefix (tests/repositories runs these calls)"
ARCHIVE = (
    "needs a storage location (a registry admin's item over a transfer collection), a local"
    " endpoint and sessions of a lab; tests/archive runs these calls end to end"
)
GLOBUS_REPO = (
    "needs an open TransferRepository: a local endpoint (a transfer collection over a directory"
    " of this machine, registered by an administrator) and a destination collection;"
    " tests/repositories runs these calls against the reference server"
)
REGISTERED = (
    "needs a registered dataset (RegisteredDataset) with file records; the cases run in"
    " tests/repositories/test_mapping.py"
)

REPLICATED = (
    "needs registered datasets whose bytes are in repositories the reader opened;"
    " tests/deletion runs these calls"
)

RESOLVER = (
    "needs repository items (an admin creates them and grants their data roles) and a local"
    " mount; tests/patcher/test_resolve.py runs these calls"
)

PATCHER = (
    "needs registered datasets held in repositories the user may write (an admin creates"
    " them), local new versions and a journal; tests/patcher runs these calls"
)

MAINTENANCE = (
    "needs registered datasets held in repositories the user may open (an admin creates"
    " them) and a local mount; tests/deletion/test_patcher_methods.py runs these calls"
)

NOT_RUN: dict[str, str] = {
    "provena_like.clients.crawl:CrawlClient.start_job": READER_OBJECTS,
    "provena_like.clients.crawl:CrawlClient.get_job": READER_OBJECTS,
    "provena_like.clients.crawl:CrawlClient.poll_job": READER_OBJECTS,
    "provena_like.clients.crawl:CrawlClient.list_jobs": READER_OBJECTS,
    "provena_like.clients.crawl:CrawlClient.iter_jobs": READER_OBJECTS,
    "provena_like.clients.crawl:CrawlClient.flush": READER_OBJECTS,
    "provena_like.clients.crawl:CrawlClient.ack": READER_OBJECTS,
    "provena_like.clients.crawl:CrawlClient.cancel_job": READER_OBJECTS,
    "provena_like.modules.crawl_jobs:CrawlHandle.status": READER_OBJECTS,
    "provena_like.modules.crawl_jobs:CrawlHandle.wait": READER_OBJECTS,
    "provena_like.modules.crawl_jobs:CrawlHandle.flush": READER_OBJECTS,
    "provena_like.modules.crawl_jobs:CrawlHandle.ack": READER_OBJECTS,
    "provena_like.modules.crawl_jobs:CrawlHandle.cancel": READER_OBJECTS,
    "provena_like.modules.crawl_jobs:CrawlHandle.records": READER_OBJECTS,
    "provena_like.modules.crawl_jobs:Crawler.job": READER_OBJECTS,
    "provena_like.modules.crawl_jobs:Crawler.start": GLOBUS_COLLECTION,
    "provena_like.server.crawl.service:CollectionTree": SERVER,
    "provena_like.modules.checking": REPLICATED,
    "provena_like.modules.checking:CheckReport": REPLICATED,
    "provena_like.modules.checking:check_datasets": REPLICATED,
    "provena_like.modules.deletion": REPLICATED,
    "provena_like.modules.deletion:DeletionReport": REPLICATED,
    "provena_like.modules.deletion:delete_datasets": REPLICATED,
    "provena_like._core.http": READER_OBJECTS,
    "provena_like._core.http:HTTPCore.aclose": READER_OBJECTS,
    "provena_like._core.http:HTTPCore.request": READER_OBJECTS,
    "provena_like._core.pagination": READER_OBJECTS,
    "provena_like._core.pagination:AsyncPaginator": READER_AUTH,
    "provena_like._core.pagination:AsyncPaginator.pages": READER_AUTH,
    "provena_like._core.retry:RetryPolicy.call": READER_OBJECTS,
    "provena_like._core.sentinels": READER_OBJECTS,
    "provena_like.auth": READER_AUTH,
    "provena_like.auth.flows:ClientCredentials": SECRET,
    "provena_like.auth.flows:DeviceCodeFlow": READER_AUTH,
    "provena_like.auth.flows:RefreshTokenFlow": READER_OBJECTS,
    "provena_like.auth.flows:StaticToken": SECRET,
    "provena_like.auth.manager:AuthManager.aclose": READER_AUTH,
    "provena_like.auth.manager:AuthManager.bind": READER_AUTH,
    "provena_like.auth.manager:AuthManager.get_access_token": READER_AUTH,
    "provena_like.auth.loopback:AuthorizationCodeFlow": READER_AUTH,
    "provena_like.auth.manager:AuthManager.login_browser": READER_AUTH,
    "provena_like.auth.manager:AuthManager.login_device": READER_AUTH,
    "provena_like.auth.manager:AuthManager.logout": READER_AUTH,
    "provena_like.auth.manager:AuthManager.provider_metadata": READER_AUTH,
    "provena_like.auth.oidc:OIDCDiscovery": READER_AUTH,
    "provena_like.auth.oidc:fetch_oidc_configuration": READER_AUTH,
    "provena_like.auth.store:TokenStore": READER_OBJECTS,
    "provena_like.auth.store:TokenStore.delete": READER_AUTH,
    "provena_like.auth.store:TokenStore.forget_sign_in": READER_AUTH,
    "provena_like.auth.store:TokenStore.keys": READER_AUTH,
    "provena_like.auth.store:TokenStore.load": READER_AUTH,
    "provena_like.auth.store:TokenStore.lock": READER_AUTH,
    "provena_like.auth.store:TokenStore.remember_sign_in": READER_AUTH,
    "provena_like.auth.store:TokenStore.sign_in_for": READER_AUTH,
    "provena_like.auth.store:TokenStore.save": READER_AUTH,
    "provena_like.client:ProvenaClient": HOST,
    "provena_like.client:ProvenaClient.transfer_client": GLOBUS,
    "provena_like.clients.auth:AuthClient.add_group_member": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.create_client": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.create_group": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.create_user": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.delete_client": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.get_group": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.get_user": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.iter_clients": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.iter_groups": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.iter_users": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.list_clients": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.list_groups": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.list_user_groups": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.list_users": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.remove_group_member": PRIVILEGED,
    "provena_like.clients.auth:AuthClient.update_user": PRIVILEGED,
    "provena_like.clients.datastore:DatastoreClient.register_files": READER_OBJECTS,
    "provena_like.clients.datastore:DatastoreClient.revert_dataset": HISTORY_ID,
    "provena_like.clients.datastore:DatastoreClient.update_dataset": L2_DATASET,
    "provena_like.clients.registry:RegistryClient.check_protected": LAB_MEMBER,
    "provena_like.clients.registry:RegistryClient.check_unchanged": LAB_MEMBER,
    "provena_like.clients.registry:RegistryClient.create_session": LAB_MEMBER,
    "provena_like.clients.registry:RegistryClient.register_files": LAB_MEMBER,
    "provena_like.clients.registry:RegistryClient.set_default": LAB_MEMBER,
    "provena_like.clients.registry:RegistryClient.revert_item": ITEM_STATE,
    "provena_like.clients.registry:RegistryClient.unlock_item": ITEM_STATE,
    "provena_like.clients.registry:RegistryClient.update_access": ITEM_STATE,
    "provena_like.clients.registry:RegistryClient.update_item": READER_OBJECTS,
    "provena_like.clients.review:ReviewClient.add_reviewer": PRIVILEGED,
    "provena_like.clients.review:ReviewClient.approve_release": REVIEWER,
    "provena_like.clients.review:ReviewClient.reject_release": REVIEWER,
    "provena_like.clients.review:ReviewClient.remove_reviewer": PRIVILEGED,
    "provena_like.clients.review:ReviewClient.request_release": REVIEWER,
    "provena_like.clients.review:ReviewClient.withdraw_release": REVIEWER,
    "provena_like.clients.search:SearchClient.reindex": PRIVILEGED,
    "provena_like.clients.transfer": GLOBUS,
    "provena_like.clients.transfer.auth:GlobusNativeLogin": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.cancel": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.delete": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.get_endpoint": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.get_task": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.iter_endpoints": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.iter_tasks": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.list_skipped_errors": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.list_successful_transfers": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.list_task_events": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.poll_task": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.list_tasks": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.ls": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.mkdir": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.rename": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.search_endpoints": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.stat": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.submission_id": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.transfer": GLOBUS,
    "provena_like.clients.transfer.client:TransferClient.walk": GLOBUS,
    "provena_like.clients.transfer.task:TaskHandle.wait": GLOBUS,
    "provena_like.clients.transfer.task:TaskResult": GLOBUS,
    "provena_like.models.datastore:PresignedURL": READER_OBJECTS,
    "provena_like.modules.credentials:request_identity": READER_AUTH,
    "provena_like.modules.datastore:Datastore.revert_metadata": HISTORY_ID,
    "provena_like.modules.interactive:InteractiveDataset.request_release": REVIEWER,
    "provena_like.modules.interactive:InteractiveDataset.withdraw_release": REVIEWER,
    "provena_like.modules.registration": LAB_MEMBER,
    "provena_like.modules.registration:Registration": LAB_MEMBER,
    "provena_like.modules.registration:Registration.check_protected_files": LAB_MEMBER,
    "provena_like.modules.registration:Registration.create_session": LAB_MEMBER,
    "provena_like.modules.registration:Registration.register_files": LAB_MEMBER,
    "provena_like.modules.registration:Registration.register_session": LAB_MEMBER,
    "provena_like.modules.registration:Registration.create_sessions": LAB_MEMBER,
    "provena_like.modules.registration:Registration.iter_datasets": LAB_MEMBER,
    "provena_like.modules.registration:Registration.iter_sessions": LAB_MEMBER,
    "provena_like.modules.registration:Registration.register_weight": LAB_MEMBER,
    "provena_like.modules.registration:Registration.register_water_administration": LAB_MEMBER,
    "provena_like.modules.review": REVIEWER,
    "provena_like.modules.review:Review": REVIEWER,
    "provena_like.modules.review:Review.add_reviewer": PRIVILEGED,
    "provena_like.modules.review:Review.approve": REVIEWER,
    "provena_like.modules.review:Review.reject": REVIEWER,
    "provena_like.modules.review:Review.remove_reviewer": PRIVILEGED,
    "provena_like.modules.review:Review.request_release": REVIEWER,
    "provena_like.modules.review:Review.withdraw": REVIEWER,
    "provena_like.modules.credentials:CredentialsCache.on_forget": READER_OBJECTS,
    "provena_like.modules.credentials:CredentialsCache.source": READER_OBJECTS,
    "provena_like.modules.engines:EnginePool": READER_OBJECTS,
    "provena_like.modules.engines:EnginePool.aclose": READER_OBJECTS,
    "provena_like.modules.engines:EnginePool.forget": READER_OBJECTS,
    "provena_like.modules.engines:EnginePool.retire_after_failures": READER_OBJECTS,
    "provena_like.server.pagination:keyset_page": SERVER,
    "provena_like.server.registry.events": SERVER,
    "provena_like.server.access:effective_roles": SERVER,
    "provena_like.server.access:role_sources": SERVER,
    "provena_like.server.app:create_app": SERVER,
    "provena_like.server.auth.bootstrap:bootstrap": SERVER,
    "provena_like.server.auth.keys:AuthKeys.form_token": SERVER,
    "provena_like.server.auth.keys:AuthKeys.seal": SERVER,
    "provena_like.server.auth.passwords:Passwords": SERVER,
    "provena_like.server.auth.throttle:LoginThrottle": SERVER,
    "provena_like.server.auth:setup": SERVER,
    "provena_like.server.datastore.storage:open_object_store": SERVER,
    "provena_like.server.errors:task_group": SERVER,
    "provena_like.server.notifications:LoggingNotifier": SERVER,
    "provena_like.server.notifications:NoopNotifier": SERVER,
    "provena_like.server.notifications:WebhookNotifier": SERVER,
    "provena_like.server.notifications:notifier_from_settings": SERVER,
    "provena_like.server.notifications:notify_safely": SERVER,
    "provena_like.server.search.highlight:mark_matches": SERVER,
    "provena_like.server.search.index:index_item": SERVER,
    "provena_like.server.search.sqlite_fts:match_expression": SERVER,
    "provena_like.server.startup:file_lock": SERVER,
    "provena_like.server.startup:startup_lock": SERVER,
    "provena_like.server.transfer.collections:Collection.resolve": SERVER,
    "provena_like.server.transfer.collections:open_collection": SERVER,
    "provena_like.server.transfer.watch": READER_OBJECTS,
    "provena_like.server.held_polls": READER_OBJECTS,
    "provena_like.repositories": REGISTERED,
    "provena_like.repositories.mapping": REGISTERED,
    "provena_like.repositories.mapping:file_record": REGISTERED,
    "provena_like.repositories.mapping:path_from_dataset": REGISTERED,
    "provena_like.repositories.mapping:paths_from_datasets": REGISTERED,
    "provena_like.modules.patcher": PATCHER,
    "provena_like.modules.patcher.journal": PATCHER,
    "provena_like.modules.patcher.patch": PATCHER,
    "provena_like.modules.patcher.patch:Patcher": PATCHER,
    "provena_like.modules.patcher.patch:Patcher.resume": PATCHER,
    "provena_like.modules.patcher.patch:Patcher.resolver": MAINTENANCE,
    "provena_like.modules.patcher.patch:Patcher.delete_datasets": MAINTENANCE,
    "provena_like.modules.patcher.patch:Patcher.check_datasets": MAINTENANCE,
    "provena_like.repositories.resolve": RESOLVER,
    "provena_like.repositories.resolve:OpenRepositories": RESOLVER,
    "provena_like.repositories.resolve:RepositoryResolver": RESOLVER,
    "provena_like.repositories.s3:S3Repository": S3_CREDS,
    "provena_like.repositories.s3:S3Repository.aclose": S3_REPO,
    "provena_like.repositories.s3:S3Repository.confirm_many": S3_REPO,
    "provena_like.repositories.s3:S3Repository.delete": S3_REPO,
    "provena_like.repositories.s3:S3Repository.delete_many": S3_REPO,
    "provena_like.repositories.s3:S3Repository.get": S3_REPO,
    "provena_like.repositories.s3:S3Repository.key": S3_REPO,
    "provena_like.repositories.s3:S3Repository.list": S3_REPO,
    "provena_like.repositories.s3:S3Repository.put": S3_REPO,
    "provena_like.repositories.s3:S3Repository.put_many": S3_REPO,
    "provena_like.repositories.s3:S3Repository.stat": S3_REPO,
    "provena_like.repositories.s3:S3Repository.stat_many": S3_REPO,
    "provena_like.repositories.transfer": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository.location": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository.put": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository.put_many": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository.get": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository.stat": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository.delete": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository.delete_many": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository.send": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository.receive": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository.verify_many": GLOBUS_REPO,
    "provena_like.clients.archive": ARCHIVE,
    "provena_like.clients.archive:ArchiveClient": ARCHIVE,
    "provena_like.clients.archive:ArchiveClient.list_archived_files": ARCHIVE,
    "provena_like.clients.archive:ArchiveClient.iter_archived_files": ARCHIVE,
    "provena_like.clients.archive:ArchiveClient.record_archived_files": ARCHIVE,
    "provena_like.clients.archive:ArchiveClient.delete_archived_files": ARCHIVE,
    "provena_like.modules.archive": ARCHIVE,
    "provena_like.modules.archive:Archive.publish": ARCHIVE,
    "provena_like.modules.archive:Archive.discover": ARCHIVE,
    "provena_like.modules.archive:Archive.ls": ARCHIVE,
    "provena_like.modules.archive:Archive.retrieve": ARCHIVE,
    "provena_like.repositories.transfer:TransferRepository.list": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository.incomplete": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository.spooled": GLOBUS_REPO,
    "provena_like.repositories.transfer:TransferRepository.discard_spooled": GLOBUS_REPO,
    "provena_like.storage": S3_CREDS,
    "provena_like.storage._requests:S3Requests.call": ENGINE,
    "provena_like.storage._requests:S3Requests.get": ENGINE,
    "provena_like.storage._requests:S3Requests.get_range_into": ENGINE,
    "provena_like.storage._requests:S3Requests.head": ENGINE,
    "provena_like.storage._requests:S3Requests.open_get": ENGINE,
    "provena_like.storage._requests:S3Requests.list_page": ENGINE,
    "provena_like.storage._requests:S3Requests.put": ENGINE,
    "provena_like.storage._requests:S3Requests.upload_part": ENGINE,
    "provena_like.storage.credentials": ENGINE,
    "provena_like.storage.credentials:RefreshingCredentials": S3_CREDS,
    "provena_like.storage.credentials:RefreshingCredentials.effective_margin": S3_CREDS,
    "provena_like.storage.credentials:S3Credentials.from_scoped": RESOLVER,
    "provena_like.storage.credentials:S3Credentials.from_sts": S3_CREDS,
    "provena_like.storage.credentials:S3Credentials.same_location": S3_CREDS,
    "provena_like.storage.credentials:S3Credentials.seconds_left": S3_CREDS,
    "provena_like.storage.credentials:RefreshingCredentials.fixed": S3_CREDS,
    "provena_like.storage.credentials:RefreshingCredentials.frozen": S3_CREDS,
    "provena_like.storage.credentials:botocore_session": S3_CREDS,
    "provena_like.storage.engine": S3_CREDS,
    "provena_like.storage.engine:TransferEngine": S3_CREDS,
    "provena_like.storage.engine:TransferEngine.abort_incomplete_uploads": ENGINE,
    "provena_like.storage.engine:TransferEngine.aclose": S3_CREDS,
    "provena_like.storage.engine:TransferEngine.delete": ENGINE,
    "provena_like.storage.engine:TransferEngine.digest": ENGINE,
    "provena_like.storage.engine:TransferEngine.read_back": ENGINE,
    "provena_like.storage.engine:TransferEngine.download": ENGINE,
    "provena_like.storage.engine:TransferEngine.list": ENGINE,
    "provena_like.storage.engine:TransferEngine.list_incomplete_uploads": ENGINE,
    "provena_like.storage.engine:TransferEngine.stat": ENGINE,
    "provena_like.storage.engine:TransferEngine.sync_down": ENGINE,
    "provena_like.storage.engine:TransferEngine.sync_up": ENGINE,
    "provena_like.storage.engine:TransferEngine.upload": ENGINE,
    "provena_like.storage.engine:TransferEngine.verify": ENGINE,
    "provena_like.storage.retry:S3RetryPolicy.run": ENGINE,
    "provena_like.storage.events": ENGINE,
    "provena_like.storage.events:deliver": READER_OBJECTS,
    "provena_like.storage.keys:prepare_local_target": READER_OBJECTS,
    "provena_like.storage.paths": READER_OBJECTS,
    "provena_like.storage.paths#1": S3_CREDS,
    "provena_like.storage.paths:dataset_path": S3_CREDS,
    "provena_like.storage.paths:s3_client_for": S3_CREDS,
    "provena_like.storage.results:TransferResult": ENGINE,
    "provena_like.testing.device_approval:approve_device_code": READER_AUTH,
    "provena_like.testing.server_thread:ServerThread": SERVER,
    "provena_like.testing.server_workers:ServerWorkers": SERVER,
}

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

CHECKPOINT_KIND_CPUINFO: CheckpointKind
CHECKPOINT_KIND_DUMP: CheckpointKind
CHECKPOINT_KIND_PAGES: CheckpointKind
CHECKPOINT_KIND_PRE_DUMP: CheckpointKind
CHECKPOINT_KIND_UNSPECIFIED: CheckpointKind
CHECKPOINT_LOG_KIND_CPUINFO_CHECK: CheckpointLogKind
CHECKPOINT_LOG_KIND_CPUINFO_DUMP: CheckpointLogKind
CHECKPOINT_LOG_KIND_DUMP: CheckpointLogKind
CHECKPOINT_LOG_KIND_PAGE_SERVER: CheckpointLogKind
CHECKPOINT_LOG_KIND_PRE_DUMP: CheckpointLogKind
CHECKPOINT_LOG_KIND_RESTORE: CheckpointLogKind
CHECKPOINT_LOG_KIND_UNSPECIFIED: CheckpointLogKind
CHECKPOINT_STATE_COMPLETE: CheckpointState
CHECKPOINT_STATE_UNCONFIRMED: CheckpointState
CHECKPOINT_STATE_UNSPECIFIED: CheckpointState
CRIU_CG_MODE_CG_NONE: CriuCgMode
CRIU_CG_MODE_DEFAULT: CriuCgMode
CRIU_CG_MODE_FULL: CriuCgMode
CRIU_CG_MODE_IGNORE: CriuCgMode
CRIU_CG_MODE_PROPS: CriuCgMode
CRIU_CG_MODE_SOFT: CriuCgMode
CRIU_CG_MODE_STRICT: CriuCgMode
CRIU_NETWORK_LOCK_METHOD_IPTABLES: CriuNetworkLockMethod
CRIU_NETWORK_LOCK_METHOD_NFTABLES: CriuNetworkLockMethod
CRIU_NETWORK_LOCK_METHOD_SKIP: CriuNetworkLockMethod
CRIU_NETWORK_LOCK_METHOD_UNSPECIFIED: CriuNetworkLockMethod
CRIU_PRE_DUMP_MODE_SPLICE: CriuPreDumpMode
CRIU_PRE_DUMP_MODE_UNSPECIFIED: CriuPreDumpMode
CRIU_PRE_DUMP_MODE_VM_READ: CriuPreDumpMode
DESCRIPTOR: _descriptor.FileDescriptor
DURABILITY_FSYNC: Durability
DURABILITY_NONE: Durability
DURABILITY_UNSPECIFIED: Durability
HOST_FINDING_STATE_DEGRADED: HostFindingState
HOST_FINDING_STATE_MISSING: HostFindingState
HOST_FINDING_STATE_OK: HostFindingState
HOST_FINDING_STATE_UNSPECIFIED: HostFindingState
MIGRATION_MODE_POST_COPY: MigrationMode
MIGRATION_MODE_PRE_COPY: MigrationMode
MIGRATION_MODE_STOP_AND_COPY: MigrationMode
MIGRATION_MODE_UNSPECIFIED: MigrationMode
OPERATION_KIND_CHECK: OperationKind
OPERATION_KIND_CPUINFO_CHECK: OperationKind
OPERATION_KIND_CPUINFO_DUMP: OperationKind
OPERATION_KIND_DUMP: OperationKind
OPERATION_KIND_EXPORT: OperationKind
OPERATION_KIND_FEATURE_CHECK: OperationKind
OPERATION_KIND_IMPORT: OperationKind
OPERATION_KIND_ITERATIVE_DUMP: OperationKind
OPERATION_KIND_PAGE_SERVER: OperationKind
OPERATION_KIND_PRE_DUMP: OperationKind
OPERATION_KIND_PUSH: OperationKind
OPERATION_KIND_RESTORE: OperationKind
OPERATION_KIND_UNSPECIFIED: OperationKind
OPERATION_KIND_VERSION: OperationKind
OPERATION_KIND_WAIT_PID: OperationKind
TRANSFER_COMPRESSION_NONE: TransferCompression
TRANSFER_COMPRESSION_UNSPECIFIED: TransferCompression
TRANSFER_COMPRESSION_ZSTD: TransferCompression

class AcceptMigrationHeader(_message.Message):
    __slots__ = ["checkpoint_id", "criu_version", "mode", "restore_options", "root_pid"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    CRIU_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RESTORE_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ROOT_PID_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    criu_version: str
    mode: MigrationMode
    restore_options: CriuOptions
    root_pid: int
    def __init__(self, checkpoint_id: _Optional[str] = ..., mode: _Optional[_Union[MigrationMode, str]] = ..., restore_options: _Optional[_Union[CriuOptions, _Mapping]] = ..., root_pid: _Optional[int] = ..., criu_version: _Optional[str] = ...) -> None: ...

class AcceptMigrationRequest(_message.Message):
    __slots__ = ["chunk", "commit", "header", "images_end", "pages"]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    IMAGES_END_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    chunk: MigrationChunk
    commit: MigrationCommit
    header: AcceptMigrationHeader
    images_end: MigrationImagesEnd
    pages: MigrationPages
    def __init__(self, header: _Optional[_Union[AcceptMigrationHeader, _Mapping]] = ..., chunk: _Optional[_Union[MigrationChunk, _Mapping]] = ..., images_end: _Optional[_Union[MigrationImagesEnd, _Mapping]] = ..., commit: _Optional[_Union[MigrationCommit, _Mapping]] = ..., pages: _Optional[_Union[MigrationPages, _Mapping]] = ...) -> None: ...

class AcceptMigrationResponse(_message.Message):
    __slots__ = ["pages", "restored", "running"]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    RESTORED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    pages: MigrationPages
    restored: MigrationRestored
    running: MigrationRunning
    def __init__(self, restored: _Optional[_Union[MigrationRestored, _Mapping]] = ..., running: _Optional[_Union[MigrationRunning, _Mapping]] = ..., pages: _Optional[_Union[MigrationPages, _Mapping]] = ...) -> None: ...

class CallbackAnsweredEvent(_message.Message):
    __slots__ = ["answered_by", "script", "sequence", "success"]
    ANSWERED_BY_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    answered_by: str
    script: str
    sequence: int
    success: bool
    def __init__(self, sequence: _Optional[int] = ..., script: _Optional[str] = ..., success: bool = ..., answered_by: _Optional[str] = ...) -> None: ...

class CallbackEvent(_message.Message):
    __slots__ = ["pid", "script", "sequence"]
    PID_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    pid: int
    script: str
    sequence: int
    def __init__(self, sequence: _Optional[int] = ..., script: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class CgroupRoot(_message.Message):
    __slots__ = ["ctrl", "path"]
    CTRL_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ctrl: str
    path: str
    def __init__(self, ctrl: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class CheckRequest(_message.Message):
    __slots__ = ["options"]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    options: CriuOptions
    def __init__(self, options: _Optional[_Union[CriuOptions, _Mapping]] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ["findings"]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    findings: _containers.RepeatedCompositeFieldContainer[HostFinding]
    def __init__(self, findings: _Optional[_Iterable[_Union[HostFinding, _Mapping]]] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ["checkpoint_id", "create_time", "criu_version", "dump_statistics", "durability", "kind", "leave_running", "pages_sent_to", "parent_checkpoint_id", "root_pid", "size_bytes", "state"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CRIU_VERSION_FIELD_NUMBER: _ClassVar[int]
    DUMP_STATISTICS_FIELD_NUMBER: _ClassVar[int]
    DURABILITY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LEAVE_RUNNING_FIELD_NUMBER: _ClassVar[int]
    PAGES_SENT_TO_FIELD_NUMBER: _ClassVar[int]
    PARENT_CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    ROOT_PID_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    create_time: _timestamp_pb2.Timestamp
    criu_version: str
    dump_statistics: DumpStatistics
    durability: Durability
    kind: CheckpointKind
    leave_running: bool
    pages_sent_to: str
    parent_checkpoint_id: str
    root_pid: int
    size_bytes: int
    state: CheckpointState
    def __init__(self, checkpoint_id: _Optional[str] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., size_bytes: _Optional[int] = ..., root_pid: _Optional[int] = ..., parent_checkpoint_id: _Optional[str] = ..., criu_version: _Optional[str] = ..., leave_running: bool = ..., kind: _Optional[_Union[CheckpointKind, str]] = ..., dump_statistics: _Optional[_Union[DumpStatistics, _Mapping]] = ..., pages_sent_to: _Optional[str] = ..., state: _Optional[_Union[CheckpointState, str]] = ..., durability: _Optional[_Union[Durability, str]] = ...) -> None: ...

class CpuinfoCheckRequest(_message.Message):
    __slots__ = ["checkpoint_id", "options"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    options: CriuOptions
    def __init__(self, checkpoint_id: _Optional[str] = ..., options: _Optional[_Union[CriuOptions, _Mapping]] = ...) -> None: ...

class CpuinfoCheckResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class CpuinfoDumpRequest(_message.Message):
    __slots__ = ["checkpoint_id", "options"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    options: CriuOptions
    def __init__(self, checkpoint_id: _Optional[str] = ..., options: _Optional[_Union[CriuOptions, _Mapping]] = ...) -> None: ...

class CpuinfoDumpResponse(_message.Message):
    __slots__ = ["checkpoint"]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...

class CriuOptions(_message.Message):
    __slots__ = ["auto_dedup", "auto_ext_mnt", "cg_root", "cgroup_dump_controller", "cgroup_props", "cgroup_props_file", "cgroup_yard", "config_file", "cpu_cap", "display_stats", "empty_ns", "enable_fs", "evasive_devices", "exec_cmd", "ext_masters", "ext_mnt", "ext_sharing", "ext_unix_sk", "external", "file_locks", "force_irmap", "freeze_cgroup", "ghost_limit", "irmap_scan_paths", "join_ns", "lazy_pages", "leave_running", "leave_stopped", "link_remap", "log_file", "log_level", "log_to_stderr", "lsm_mount_context", "lsm_profile", "manage_cgroups", "manage_cgroups_mode", "mntns_compat_mode", "network_lock", "notify_scripts", "orphan_pts_master", "pid", "pre_dump_mode", "ps", "root", "rst_sibling", "shell_job", "skip_file_rwx_check", "skip_mnt", "tcp_close", "tcp_established", "tcp_skip_in_flight", "timeout", "tls", "tls_cacert", "tls_cacrl", "tls_cert", "tls_key", "tls_no_cn_verify", "track_mem", "unix_sk_ino", "unprivileged", "veths", "weak_sysctls"]
    AUTO_DEDUP_FIELD_NUMBER: _ClassVar[int]
    AUTO_EXT_MNT_FIELD_NUMBER: _ClassVar[int]
    CGROUP_DUMP_CONTROLLER_FIELD_NUMBER: _ClassVar[int]
    CGROUP_PROPS_FIELD_NUMBER: _ClassVar[int]
    CGROUP_PROPS_FILE_FIELD_NUMBER: _ClassVar[int]
    CGROUP_YARD_FIELD_NUMBER: _ClassVar[int]
    CG_ROOT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FILE_FIELD_NUMBER: _ClassVar[int]
    CPU_CAP_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_STATS_FIELD_NUMBER: _ClassVar[int]
    EMPTY_NS_FIELD_NUMBER: _ClassVar[int]
    ENABLE_FS_FIELD_NUMBER: _ClassVar[int]
    EVASIVE_DEVICES_FIELD_NUMBER: _ClassVar[int]
    EXEC_CMD_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_FIELD_NUMBER: _ClassVar[int]
    EXT_MASTERS_FIELD_NUMBER: _ClassVar[int]
    EXT_MNT_FIELD_NUMBER: _ClassVar[int]
    EXT_SHARING_FIELD_NUMBER: _ClassVar[int]
    EXT_UNIX_SK_FIELD_NUMBER: _ClassVar[int]
    FILE_LOCKS_FIELD_NUMBER: _ClassVar[int]
    FORCE_IRMAP_FIELD_NUMBER: _ClassVar[int]
    FREEZE_CGROUP_FIELD_NUMBER: _ClassVar[int]
    GHOST_LIMIT_FIELD_NUMBER: _ClassVar[int]
    IRMAP_SCAN_PATHS_FIELD_NUMBER: _ClassVar[int]
    JOIN_NS_FIELD_NUMBER: _ClassVar[int]
    LAZY_PAGES_FIELD_NUMBER: _ClassVar[int]
    LEAVE_RUNNING_FIELD_NUMBER: _ClassVar[int]
    LEAVE_STOPPED_FIELD_NUMBER: _ClassVar[int]
    LINK_REMAP_FIELD_NUMBER: _ClassVar[int]
    LOG_FILE_FIELD_NUMBER: _ClassVar[int]
    LOG_LEVEL_FIELD_NUMBER: _ClassVar[int]
    LOG_TO_STDERR_FIELD_NUMBER: _ClassVar[int]
    LSM_MOUNT_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LSM_PROFILE_FIELD_NUMBER: _ClassVar[int]
    MANAGE_CGROUPS_FIELD_NUMBER: _ClassVar[int]
    MANAGE_CGROUPS_MODE_FIELD_NUMBER: _ClassVar[int]
    MNTNS_COMPAT_MODE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_LOCK_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_SCRIPTS_FIELD_NUMBER: _ClassVar[int]
    ORPHAN_PTS_MASTER_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    PRE_DUMP_MODE_FIELD_NUMBER: _ClassVar[int]
    PS_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    RST_SIBLING_FIELD_NUMBER: _ClassVar[int]
    SHELL_JOB_FIELD_NUMBER: _ClassVar[int]
    SKIP_FILE_RWX_CHECK_FIELD_NUMBER: _ClassVar[int]
    SKIP_MNT_FIELD_NUMBER: _ClassVar[int]
    TCP_CLOSE_FIELD_NUMBER: _ClassVar[int]
    TCP_ESTABLISHED_FIELD_NUMBER: _ClassVar[int]
    TCP_SKIP_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    TLS_CACERT_FIELD_NUMBER: _ClassVar[int]
    TLS_CACRL_FIELD_NUMBER: _ClassVar[int]
    TLS_CERT_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    TLS_KEY_FIELD_NUMBER: _ClassVar[int]
    TLS_NO_CN_VERIFY_FIELD_NUMBER: _ClassVar[int]
    TRACK_MEM_FIELD_NUMBER: _ClassVar[int]
    UNIX_SK_INO_FIELD_NUMBER: _ClassVar[int]
    UNPRIVILEGED_FIELD_NUMBER: _ClassVar[int]
    VETHS_FIELD_NUMBER: _ClassVar[int]
    WEAK_SYSCTLS_FIELD_NUMBER: _ClassVar[int]
    auto_dedup: bool
    auto_ext_mnt: bool
    cg_root: _containers.RepeatedCompositeFieldContainer[CgroupRoot]
    cgroup_dump_controller: _containers.RepeatedScalarFieldContainer[str]
    cgroup_props: str
    cgroup_props_file: str
    cgroup_yard: str
    config_file: str
    cpu_cap: int
    display_stats: bool
    empty_ns: int
    enable_fs: _containers.RepeatedScalarFieldContainer[str]
    evasive_devices: bool
    exec_cmd: _containers.RepeatedScalarFieldContainer[str]
    ext_masters: bool
    ext_mnt: _containers.RepeatedCompositeFieldContainer[ExtMountMap]
    ext_sharing: bool
    ext_unix_sk: bool
    external: _containers.RepeatedScalarFieldContainer[str]
    file_locks: bool
    force_irmap: bool
    freeze_cgroup: str
    ghost_limit: int
    irmap_scan_paths: _containers.RepeatedScalarFieldContainer[str]
    join_ns: _containers.RepeatedCompositeFieldContainer[JoinNamespace]
    lazy_pages: bool
    leave_running: bool
    leave_stopped: bool
    link_remap: bool
    log_file: str
    log_level: int
    log_to_stderr: bool
    lsm_mount_context: str
    lsm_profile: str
    manage_cgroups: bool
    manage_cgroups_mode: CriuCgMode
    mntns_compat_mode: bool
    network_lock: CriuNetworkLockMethod
    notify_scripts: bool
    orphan_pts_master: bool
    pid: int
    pre_dump_mode: CriuPreDumpMode
    ps: PageServerInfo
    root: str
    rst_sibling: bool
    shell_job: bool
    skip_file_rwx_check: bool
    skip_mnt: _containers.RepeatedScalarFieldContainer[str]
    tcp_close: bool
    tcp_established: bool
    tcp_skip_in_flight: bool
    timeout: int
    tls: bool
    tls_cacert: str
    tls_cacrl: str
    tls_cert: str
    tls_key: str
    tls_no_cn_verify: bool
    track_mem: bool
    unix_sk_ino: _containers.RepeatedCompositeFieldContainer[UnixSocket]
    unprivileged: bool
    veths: _containers.RepeatedCompositeFieldContainer[VethPair]
    weak_sysctls: bool
    def __init__(self, pid: _Optional[int] = ..., leave_running: bool = ..., ext_unix_sk: bool = ..., tcp_established: bool = ..., evasive_devices: bool = ..., shell_job: bool = ..., file_locks: bool = ..., log_level: _Optional[int] = ..., log_file: _Optional[str] = ..., ps: _Optional[_Union[PageServerInfo, _Mapping]] = ..., notify_scripts: bool = ..., root: _Optional[str] = ..., track_mem: bool = ..., auto_dedup: bool = ..., link_remap: bool = ..., veths: _Optional[_Iterable[_Union[VethPair, _Mapping]]] = ..., cpu_cap: _Optional[int] = ..., force_irmap: bool = ..., exec_cmd: _Optional[_Iterable[str]] = ..., ext_mnt: _Optional[_Iterable[_Union[ExtMountMap, _Mapping]]] = ..., manage_cgroups: bool = ..., cg_root: _Optional[_Iterable[_Union[CgroupRoot, _Mapping]]] = ..., rst_sibling: bool = ..., auto_ext_mnt: bool = ..., ext_sharing: bool = ..., ext_masters: bool = ..., skip_mnt: _Optional[_Iterable[str]] = ..., enable_fs: _Optional[_Iterable[str]] = ..., unix_sk_ino: _Optional[_Iterable[_Union[UnixSocket, _Mapping]]] = ..., manage_cgroups_mode: _Optional[_Union[CriuCgMode, str]] = ..., ghost_limit: _Optional[int] = ..., irmap_scan_paths: _Optional[_Iterable[str]] = ..., external: _Optional[_Iterable[str]] = ..., empty_ns: _Optional[int] = ..., join_ns: _Optional[_Iterable[_Union[JoinNamespace, _Mapping]]] = ..., cgroup_props: _Optional[str] = ..., cgroup_props_file: _Optional[str] = ..., cgroup_dump_controller: _Optional[_Iterable[str]] = ..., freeze_cgroup: _Optional[str] = ..., timeout: _Optional[int] = ..., tcp_skip_in_flight: bool = ..., weak_sysctls: bool = ..., lazy_pages: bool = ..., orphan_pts_master: bool = ..., config_file: _Optional[str] = ..., tcp_close: bool = ..., lsm_profile: _Optional[str] = ..., tls_cacert: _Optional[str] = ..., tls_cacrl: _Optional[str] = ..., tls_cert: _Optional[str] = ..., tls_key: _Optional[str] = ..., tls: bool = ..., tls_no_cn_verify: bool = ..., cgroup_yard: _Optional[str] = ..., pre_dump_mode: _Optional[_Union[CriuPreDumpMode, str]] = ..., lsm_mount_context: _Optional[str] = ..., network_lock: _Optional[_Union[CriuNetworkLockMethod, str]] = ..., mntns_compat_mode: bool = ..., skip_file_rwx_check: bool = ..., unprivileged: bool = ..., leave_stopped: bool = ..., display_stats: bool = ..., log_to_stderr: bool = ...) -> None: ...

class DeleteCheckpointRequest(_message.Message):
    __slots__ = ["checkpoint_id"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    def __init__(self, checkpoint_id: _Optional[str] = ...) -> None: ...

class DeleteCheckpointResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class DumpRequest(_message.Message):
    __slots__ = ["checkpoint_id", "durability", "options", "parent_checkpoint_id"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    DURABILITY_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PARENT_CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    durability: Durability
    options: CriuOptions
    parent_checkpoint_id: str
    def __init__(self, checkpoint_id: _Optional[str] = ..., options: _Optional[_Union[CriuOptions, _Mapping]] = ..., parent_checkpoint_id: _Optional[str] = ..., durability: _Optional[_Union[Durability, str]] = ...) -> None: ...

class DumpResponse(_message.Message):
    __slots__ = ["checkpoint", "restored", "statistics"]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    RESTORED_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    restored: bool
    statistics: DumpStatistics
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., restored: bool = ..., statistics: _Optional[_Union[DumpStatistics, _Mapping]] = ...) -> None: ...

class DumpStatistics(_message.Message):
    __slots__ = ["freezing_time_us", "frozen_time_us", "irmap_resolve_time_us", "memdump_time_us", "memwrite_time_us", "page_pipe_bufs", "page_pipes", "pages_lazy", "pages_scanned", "pages_skipped_parent", "pages_written", "shpages_scanned", "shpages_skipped_parent", "shpages_written"]
    FREEZING_TIME_US_FIELD_NUMBER: _ClassVar[int]
    FROZEN_TIME_US_FIELD_NUMBER: _ClassVar[int]
    IRMAP_RESOLVE_TIME_US_FIELD_NUMBER: _ClassVar[int]
    MEMDUMP_TIME_US_FIELD_NUMBER: _ClassVar[int]
    MEMWRITE_TIME_US_FIELD_NUMBER: _ClassVar[int]
    PAGES_LAZY_FIELD_NUMBER: _ClassVar[int]
    PAGES_SCANNED_FIELD_NUMBER: _ClassVar[int]
    PAGES_SKIPPED_PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    PAGE_PIPES_FIELD_NUMBER: _ClassVar[int]
    PAGE_PIPE_BUFS_FIELD_NUMBER: _ClassVar[int]
    SHPAGES_SCANNED_FIELD_NUMBER: _ClassVar[int]
    SHPAGES_SKIPPED_PARENT_FIELD_NUMBER: _ClassVar[int]
    SHPAGES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    freezing_time_us: int
    frozen_time_us: int
    irmap_resolve_time_us: int
    memdump_time_us: int
    memwrite_time_us: int
    page_pipe_bufs: int
    page_pipes: int
    pages_lazy: int
    pages_scanned: int
    pages_skipped_parent: int
    pages_written: int
    shpages_scanned: int
    shpages_skipped_parent: int
    shpages_written: int
    def __init__(self, freezing_time_us: _Optional[int] = ..., frozen_time_us: _Optional[int] = ..., memdump_time_us: _Optional[int] = ..., memwrite_time_us: _Optional[int] = ..., pages_scanned: _Optional[int] = ..., pages_skipped_parent: _Optional[int] = ..., pages_written: _Optional[int] = ..., irmap_resolve_time_us: _Optional[int] = ..., pages_lazy: _Optional[int] = ..., page_pipes: _Optional[int] = ..., page_pipe_bufs: _Optional[int] = ..., shpages_scanned: _Optional[int] = ..., shpages_skipped_parent: _Optional[int] = ..., shpages_written: _Optional[int] = ...) -> None: ...

class ErrorDetail(_message.Message):
    __slots__ = ["cr_errmsg", "cr_errno", "log_tail", "request_type", "worker_exit"]
    CR_ERRMSG_FIELD_NUMBER: _ClassVar[int]
    CR_ERRNO_FIELD_NUMBER: _ClassVar[int]
    LOG_TAIL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TYPE_FIELD_NUMBER: _ClassVar[int]
    WORKER_EXIT_FIELD_NUMBER: _ClassVar[int]
    cr_errmsg: str
    cr_errno: int
    log_tail: _containers.RepeatedScalarFieldContainer[str]
    request_type: str
    worker_exit: str
    def __init__(self, request_type: _Optional[str] = ..., cr_errno: _Optional[int] = ..., cr_errmsg: _Optional[str] = ..., log_tail: _Optional[_Iterable[str]] = ..., worker_exit: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ["callback", "callback_answered", "events_lost", "finished", "operation_id", "started", "time", "transfer_progress"]
    CALLBACK_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    EVENTS_LOST_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    callback: CallbackEvent
    callback_answered: CallbackAnsweredEvent
    events_lost: EventsLost
    finished: OperationFinishedEvent
    operation_id: str
    started: OperationStartedEvent
    time: _timestamp_pb2.Timestamp
    transfer_progress: TransferProgressEvent
    def __init__(self, operation_id: _Optional[str] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., started: _Optional[_Union[OperationStartedEvent, _Mapping]] = ..., callback: _Optional[_Union[CallbackEvent, _Mapping]] = ..., callback_answered: _Optional[_Union[CallbackAnsweredEvent, _Mapping]] = ..., finished: _Optional[_Union[OperationFinishedEvent, _Mapping]] = ..., events_lost: _Optional[_Union[EventsLost, _Mapping]] = ..., transfer_progress: _Optional[_Union[TransferProgressEvent, _Mapping]] = ...) -> None: ...

class EventsLost(_message.Message):
    __slots__ = ["count"]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ExportCheckpointRequest(_message.Message):
    __slots__ = ["checkpoint_id", "compression", "include_parents"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_PARENTS_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    compression: TransferCompression
    include_parents: bool
    def __init__(self, checkpoint_id: _Optional[str] = ..., include_parents: bool = ..., compression: _Optional[_Union[TransferCompression, str]] = ...) -> None: ...

class ExportCheckpointResponse(_message.Message):
    __slots__ = ["chunk", "manifest"]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    chunk: TransferChunk
    manifest: TransferManifest
    def __init__(self, manifest: _Optional[_Union[TransferManifest, _Mapping]] = ..., chunk: _Optional[_Union[TransferChunk, _Mapping]] = ...) -> None: ...

class ExportImagesRequest(_message.Message):
    __slots__ = ["checkpoint_id"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    def __init__(self, checkpoint_id: _Optional[str] = ...) -> None: ...

class ExportImagesResponse(_message.Message):
    __slots__ = ["checkpoint", "files"]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    files: _containers.RepeatedCompositeFieldContainer[ImageFile]
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., files: _Optional[_Iterable[_Union[ImageFile, _Mapping]]] = ...) -> None: ...

class ExtMountMap(_message.Message):
    __slots__ = ["key", "val"]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VAL_FIELD_NUMBER: _ClassVar[int]
    key: str
    val: str
    def __init__(self, key: _Optional[str] = ..., val: _Optional[str] = ...) -> None: ...

class FeatureCheckRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class FeatureCheckResponse(_message.Message):
    __slots__ = ["lazy_pages", "mem_track", "pidfd_store"]
    LAZY_PAGES_FIELD_NUMBER: _ClassVar[int]
    MEM_TRACK_FIELD_NUMBER: _ClassVar[int]
    PIDFD_STORE_FIELD_NUMBER: _ClassVar[int]
    lazy_pages: bool
    mem_track: bool
    pidfd_store: bool
    def __init__(self, mem_track: bool = ..., lazy_pages: bool = ..., pidfd_store: bool = ...) -> None: ...

class GetCheckpointLogRequest(_message.Message):
    __slots__ = ["checkpoint_id", "kind"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    kind: CheckpointLogKind
    def __init__(self, checkpoint_id: _Optional[str] = ..., kind: _Optional[_Union[CheckpointLogKind, str]] = ...) -> None: ...

class GetCheckpointLogResponse(_message.Message):
    __slots__ = ["size_bytes", "text", "truncated"]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    size_bytes: int
    text: str
    truncated: bool
    def __init__(self, text: _Optional[str] = ..., truncated: bool = ..., size_bytes: _Optional[int] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ["checkpoint_id"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    def __init__(self, checkpoint_id: _Optional[str] = ...) -> None: ...

class GetCheckpointResponse(_message.Message):
    __slots__ = ["checkpoint"]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...

class HostFinding(_message.Message):
    __slots__ = ["blocks", "detail", "fix", "name", "state"]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    FIX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    blocks: str
    detail: str
    fix: str
    name: str
    state: HostFindingState
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[HostFindingState, str]] = ..., detail: _Optional[str] = ..., blocks: _Optional[str] = ..., fix: _Optional[str] = ...) -> None: ...

class ImageFile(_message.Message):
    __slots__ = ["data", "name"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    name: str
    def __init__(self, name: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ImportCheckpointHeader(_message.Message):
    __slots__ = ["checkpoint_id", "manifest"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    manifest: TransferManifest
    def __init__(self, checkpoint_id: _Optional[str] = ..., manifest: _Optional[_Union[TransferManifest, _Mapping]] = ...) -> None: ...

class ImportCheckpointRequest(_message.Message):
    __slots__ = ["chunk", "header"]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    chunk: TransferChunk
    header: ImportCheckpointHeader
    def __init__(self, header: _Optional[_Union[ImportCheckpointHeader, _Mapping]] = ..., chunk: _Optional[_Union[TransferChunk, _Mapping]] = ...) -> None: ...

class ImportCheckpointResponse(_message.Message):
    __slots__ = ["bytes", "checkpoint", "parents", "wire_bytes"]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    WIRE_BYTES_FIELD_NUMBER: _ClassVar[int]
    bytes: int
    checkpoint: Checkpoint
    parents: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    wire_bytes: int
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., parents: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ..., bytes: _Optional[int] = ..., wire_bytes: _Optional[int] = ...) -> None: ...

class ImportImagesRequest(_message.Message):
    __slots__ = ["checkpoint_id", "durability", "files", "root_pid"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    DURABILITY_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    ROOT_PID_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    durability: Durability
    files: _containers.RepeatedCompositeFieldContainer[ImageFile]
    root_pid: int
    def __init__(self, checkpoint_id: _Optional[str] = ..., files: _Optional[_Iterable[_Union[ImageFile, _Mapping]]] = ..., root_pid: _Optional[int] = ..., durability: _Optional[_Union[Durability, str]] = ...) -> None: ...

class ImportImagesResponse(_message.Message):
    __slots__ = ["checkpoint"]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...

class IterationStep(_message.Message):
    __slots__ = ["final_dump"]
    FINAL_DUMP_FIELD_NUMBER: _ClassVar[int]
    final_dump: bool
    def __init__(self, final_dump: bool = ...) -> None: ...

class JoinNamespace(_message.Message):
    __slots__ = ["extra_opt", "ns", "ns_file"]
    EXTRA_OPT_FIELD_NUMBER: _ClassVar[int]
    NS_FIELD_NUMBER: _ClassVar[int]
    NS_FILE_FIELD_NUMBER: _ClassVar[int]
    extra_opt: str
    ns: str
    ns_file: str
    def __init__(self, ns: _Optional[str] = ..., ns_file: _Optional[str] = ..., extra_opt: _Optional[str] = ...) -> None: ...

class ListCheckpointsRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListCheckpointsResponse(_message.Message):
    __slots__ = ["checkpoints"]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    def __init__(self, checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ...) -> None: ...

class ListPageServersRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListPageServersResponse(_message.Message):
    __slots__ = ["page_servers"]
    PAGE_SERVERS_FIELD_NUMBER: _ClassVar[int]
    page_servers: _containers.RepeatedCompositeFieldContainer[PageServer]
    def __init__(self, page_servers: _Optional[_Iterable[_Union[PageServer, _Mapping]]] = ...) -> None: ...

class MigrateRequest(_message.Message):
    __slots__ = ["checkpoint_id", "dump_options", "mode", "pid", "restore_options", "target"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    DUMP_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    RESTORE_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    dump_options: CriuOptions
    mode: MigrationMode
    pid: int
    restore_options: CriuOptions
    target: str
    def __init__(self, pid: _Optional[int] = ..., target: _Optional[str] = ..., mode: _Optional[_Union[MigrationMode, str]] = ..., dump_options: _Optional[_Union[CriuOptions, _Mapping]] = ..., restore_options: _Optional[_Union[CriuOptions, _Mapping]] = ..., checkpoint_id: _Optional[str] = ...) -> None: ...

class MigrateResponse(_message.Message):
    __slots__ = ["done", "frozen", "images_sent", "memory", "process_lost", "restored", "source_released"]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    IMAGES_SENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    PROCESS_LOST_FIELD_NUMBER: _ClassVar[int]
    RESTORED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_RELEASED_FIELD_NUMBER: _ClassVar[int]
    done: MigrationDone
    frozen: MigrationFrozen
    images_sent: MigrationImagesSent
    memory: MigrationMemoryProgress
    process_lost: MigrationProcessLost
    restored: MigrationRestored
    source_released: MigrationSourceReleased
    def __init__(self, frozen: _Optional[_Union[MigrationFrozen, _Mapping]] = ..., images_sent: _Optional[_Union[MigrationImagesSent, _Mapping]] = ..., restored: _Optional[_Union[MigrationRestored, _Mapping]] = ..., memory: _Optional[_Union[MigrationMemoryProgress, _Mapping]] = ..., source_released: _Optional[_Union[MigrationSourceReleased, _Mapping]] = ..., process_lost: _Optional[_Union[MigrationProcessLost, _Mapping]] = ..., done: _Optional[_Union[MigrationDone, _Mapping]] = ...) -> None: ...

class MigrationChunk(_message.Message):
    __slots__ = ["data", "name", "offset"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    name: str
    offset: int
    def __init__(self, name: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class MigrationCommit(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class MigrationDone(_message.Message):
    __slots__ = ["statistics", "target_pid"]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    TARGET_PID_FIELD_NUMBER: _ClassVar[int]
    statistics: MigrationStatistics
    target_pid: int
    def __init__(self, target_pid: _Optional[int] = ..., statistics: _Optional[_Union[MigrationStatistics, _Mapping]] = ...) -> None: ...

class MigrationFrozen(_message.Message):
    __slots__ = ["dump_statistics", "pids"]
    DUMP_STATISTICS_FIELD_NUMBER: _ClassVar[int]
    PIDS_FIELD_NUMBER: _ClassVar[int]
    dump_statistics: DumpStatistics
    pids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, pids: _Optional[_Iterable[int]] = ..., dump_statistics: _Optional[_Union[DumpStatistics, _Mapping]] = ...) -> None: ...

class MigrationImagesEnd(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class MigrationImagesSent(_message.Message):
    __slots__ = ["bytes", "files"]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    bytes: int
    files: int
    def __init__(self, bytes: _Optional[int] = ..., files: _Optional[int] = ...) -> None: ...

class MigrationMemoryProgress(_message.Message):
    __slots__ = ["pages_moved", "pages_total"]
    PAGES_MOVED_FIELD_NUMBER: _ClassVar[int]
    PAGES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    pages_moved: int
    pages_total: int
    def __init__(self, pages_moved: _Optional[int] = ..., pages_total: _Optional[int] = ...) -> None: ...

class MigrationPages(_message.Message):
    __slots__ = ["data"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class MigrationProcessLost(_message.Message):
    __slots__ = ["reason"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class MigrationRestored(_message.Message):
    __slots__ = ["restore_statistics", "target_pid"]
    RESTORE_STATISTICS_FIELD_NUMBER: _ClassVar[int]
    TARGET_PID_FIELD_NUMBER: _ClassVar[int]
    restore_statistics: RestoreStatistics
    target_pid: int
    def __init__(self, target_pid: _Optional[int] = ..., restore_statistics: _Optional[_Union[RestoreStatistics, _Mapping]] = ...) -> None: ...

class MigrationRunning(_message.Message):
    __slots__ = ["target_pid"]
    TARGET_PID_FIELD_NUMBER: _ClassVar[int]
    target_pid: int
    def __init__(self, target_pid: _Optional[int] = ...) -> None: ...

class MigrationSourceReleased(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class MigrationStatistics(_message.Message):
    __slots__ = ["dump_time_us", "frozen_time_us", "image_bytes", "lazy_pages", "mode", "restore_time_us", "total_time_us", "transfer_time_us"]
    DUMP_TIME_US_FIELD_NUMBER: _ClassVar[int]
    FROZEN_TIME_US_FIELD_NUMBER: _ClassVar[int]
    IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    LAZY_PAGES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RESTORE_TIME_US_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TIME_US_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_TIME_US_FIELD_NUMBER: _ClassVar[int]
    dump_time_us: int
    frozen_time_us: int
    image_bytes: int
    lazy_pages: int
    mode: MigrationMode
    restore_time_us: int
    total_time_us: int
    transfer_time_us: int
    def __init__(self, mode: _Optional[_Union[MigrationMode, str]] = ..., frozen_time_us: _Optional[int] = ..., dump_time_us: _Optional[int] = ..., transfer_time_us: _Optional[int] = ..., restore_time_us: _Optional[int] = ..., total_time_us: _Optional[int] = ..., image_bytes: _Optional[int] = ..., lazy_pages: _Optional[int] = ...) -> None: ...

class NotifyCallback(_message.Message):
    __slots__ = ["fd_received", "operation_id", "pid", "script", "sequence", "timeout_ms"]
    FD_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    fd_received: bool
    operation_id: str
    pid: int
    script: str
    sequence: int
    timeout_ms: int
    def __init__(self, operation_id: _Optional[str] = ..., sequence: _Optional[int] = ..., script: _Optional[str] = ..., pid: _Optional[int] = ..., fd_received: bool = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class NotifyReply(_message.Message):
    __slots__ = ["external", "sequence", "success"]
    EXTERNAL_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    external: _containers.RepeatedScalarFieldContainer[str]
    sequence: int
    success: bool
    def __init__(self, sequence: _Optional[int] = ..., success: bool = ..., external: _Optional[_Iterable[str]] = ...) -> None: ...

class OperationFinishedEvent(_message.Message):
    __slots__ = ["code", "duration_ms", "message", "restored_pid"]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESTORED_PID_FIELD_NUMBER: _ClassVar[int]
    code: int
    duration_ms: int
    message: str
    restored_pid: int
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., duration_ms: _Optional[int] = ..., restored_pid: _Optional[int] = ...) -> None: ...

class OperationStarted(_message.Message):
    __slots__ = ["operation_id"]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    def __init__(self, operation_id: _Optional[str] = ...) -> None: ...

class OperationStartedEvent(_message.Message):
    __slots__ = ["caller", "checkpoint_id", "interactive", "kind", "pid"]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTIVE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    caller: str
    checkpoint_id: str
    interactive: bool
    kind: OperationKind
    pid: int
    def __init__(self, kind: _Optional[_Union[OperationKind, str]] = ..., caller: _Optional[str] = ..., pid: _Optional[int] = ..., checkpoint_id: _Optional[str] = ..., interactive: bool = ...) -> None: ...

class PageServer(_message.Message):
    __slots__ = ["address", "checkpoint_id", "pid", "port", "start_time"]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    address: str
    checkpoint_id: str
    pid: int
    port: int
    start_time: _timestamp_pb2.Timestamp
    def __init__(self, checkpoint_id: _Optional[str] = ..., pid: _Optional[int] = ..., address: _Optional[str] = ..., port: _Optional[int] = ..., start_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PageServerInfo(_message.Message):
    __slots__ = ["address", "pid", "port"]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    address: str
    pid: int
    port: int
    def __init__(self, address: _Optional[str] = ..., port: _Optional[int] = ..., pid: _Optional[int] = ...) -> None: ...

class PreDumpRequest(_message.Message):
    __slots__ = ["checkpoint_id", "durability", "options", "parent_checkpoint_id"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    DURABILITY_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PARENT_CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    durability: Durability
    options: CriuOptions
    parent_checkpoint_id: str
    def __init__(self, checkpoint_id: _Optional[str] = ..., options: _Optional[_Union[CriuOptions, _Mapping]] = ..., parent_checkpoint_id: _Optional[str] = ..., durability: _Optional[_Union[Durability, str]] = ...) -> None: ...

class PreDumpResponse(_message.Message):
    __slots__ = ["checkpoint", "statistics"]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    statistics: DumpStatistics
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., statistics: _Optional[_Union[DumpStatistics, _Mapping]] = ...) -> None: ...

class PushCheckpointRequest(_message.Message):
    __slots__ = ["checkpoint_id", "compression", "include_parents", "target", "target_checkpoint_id"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_PARENTS_FIELD_NUMBER: _ClassVar[int]
    TARGET_CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    compression: TransferCompression
    include_parents: bool
    target: str
    target_checkpoint_id: str
    def __init__(self, checkpoint_id: _Optional[str] = ..., target: _Optional[str] = ..., target_checkpoint_id: _Optional[str] = ..., include_parents: bool = ..., compression: _Optional[_Union[TransferCompression, str]] = ...) -> None: ...

class PushCheckpointResponse(_message.Message):
    __slots__ = ["progress", "result"]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: TransferProgressEvent
    result: ImportCheckpointResponse
    def __init__(self, progress: _Optional[_Union[TransferProgressEvent, _Mapping]] = ..., result: _Optional[_Union[ImportCheckpointResponse, _Mapping]] = ...) -> None: ...

class RestoreRequest(_message.Message):
    __slots__ = ["checkpoint_id", "options"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    options: CriuOptions
    def __init__(self, checkpoint_id: _Optional[str] = ..., options: _Optional[_Union[CriuOptions, _Mapping]] = ...) -> None: ...

class RestoreResponse(_message.Message):
    __slots__ = ["pid", "statistics"]
    PID_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    pid: int
    statistics: RestoreStatistics
    def __init__(self, pid: _Optional[int] = ..., statistics: _Optional[_Union[RestoreStatistics, _Mapping]] = ...) -> None: ...

class RestoreStatistics(_message.Message):
    __slots__ = ["forking_time_us", "pages_compared", "pages_restored", "pages_skipped_cow", "restore_time_us"]
    FORKING_TIME_US_FIELD_NUMBER: _ClassVar[int]
    PAGES_COMPARED_FIELD_NUMBER: _ClassVar[int]
    PAGES_RESTORED_FIELD_NUMBER: _ClassVar[int]
    PAGES_SKIPPED_COW_FIELD_NUMBER: _ClassVar[int]
    RESTORE_TIME_US_FIELD_NUMBER: _ClassVar[int]
    forking_time_us: int
    pages_compared: int
    pages_restored: int
    pages_skipped_cow: int
    restore_time_us: int
    def __init__(self, pages_compared: _Optional[int] = ..., pages_skipped_cow: _Optional[int] = ..., forking_time_us: _Optional[int] = ..., restore_time_us: _Optional[int] = ..., pages_restored: _Optional[int] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ["next", "notify_reply", "start"]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_REPLY_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    next: IterationStep
    notify_reply: NotifyReply
    start: SessionStart
    def __init__(self, start: _Optional[_Union[SessionStart, _Mapping]] = ..., notify_reply: _Optional[_Union[NotifyReply, _Mapping]] = ..., next: _Optional[_Union[IterationStep, _Mapping]] = ...) -> None: ...

class SessionResponse(_message.Message):
    __slots__ = ["callback", "dump_result", "pre_dump_result", "restore_result", "started"]
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    DUMP_RESULT_FIELD_NUMBER: _ClassVar[int]
    PRE_DUMP_RESULT_FIELD_NUMBER: _ClassVar[int]
    RESTORE_RESULT_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    callback: NotifyCallback
    dump_result: DumpResponse
    pre_dump_result: PreDumpResponse
    restore_result: RestoreResponse
    started: OperationStarted
    def __init__(self, started: _Optional[_Union[OperationStarted, _Mapping]] = ..., callback: _Optional[_Union[NotifyCallback, _Mapping]] = ..., dump_result: _Optional[_Union[DumpResponse, _Mapping]] = ..., restore_result: _Optional[_Union[RestoreResponse, _Mapping]] = ..., pre_dump_result: _Optional[_Union[PreDumpResponse, _Mapping]] = ...) -> None: ...

class SessionStart(_message.Message):
    __slots__ = ["callback_timeout_ms", "dump", "iterative_dump", "restore"]
    CALLBACK_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    DUMP_FIELD_NUMBER: _ClassVar[int]
    ITERATIVE_DUMP_FIELD_NUMBER: _ClassVar[int]
    RESTORE_FIELD_NUMBER: _ClassVar[int]
    callback_timeout_ms: int
    dump: DumpRequest
    iterative_dump: DumpRequest
    restore: RestoreRequest
    def __init__(self, dump: _Optional[_Union[DumpRequest, _Mapping]] = ..., restore: _Optional[_Union[RestoreRequest, _Mapping]] = ..., iterative_dump: _Optional[_Union[DumpRequest, _Mapping]] = ..., callback_timeout_ms: _Optional[int] = ...) -> None: ...

class StartPageServerRequest(_message.Message):
    __slots__ = ["address", "checkpoint_id", "options", "port"]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    address: str
    checkpoint_id: str
    options: CriuOptions
    port: int
    def __init__(self, checkpoint_id: _Optional[str] = ..., address: _Optional[str] = ..., port: _Optional[int] = ..., options: _Optional[_Union[CriuOptions, _Mapping]] = ...) -> None: ...

class StartPageServerResponse(_message.Message):
    __slots__ = ["page_server"]
    PAGE_SERVER_FIELD_NUMBER: _ClassVar[int]
    page_server: PageServer
    def __init__(self, page_server: _Optional[_Union[PageServer, _Mapping]] = ...) -> None: ...

class StopPageServerRequest(_message.Message):
    __slots__ = ["checkpoint_id"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    def __init__(self, checkpoint_id: _Optional[str] = ...) -> None: ...

class StopPageServerResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ["checkpoint_id", "kinds", "pid"]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    kinds: _containers.RepeatedScalarFieldContainer[OperationKind]
    pid: int
    def __init__(self, kinds: _Optional[_Iterable[_Union[OperationKind, str]]] = ..., pid: _Optional[int] = ..., checkpoint_id: _Optional[str] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ["event"]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: Event
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ...) -> None: ...

class TransferCheckpoint(_message.Message):
    __slots__ = ["checkpoint", "files"]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    files: _containers.RepeatedCompositeFieldContainer[TransferFile]
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., files: _Optional[_Iterable[_Union[TransferFile, _Mapping]]] = ...) -> None: ...

class TransferChunk(_message.Message):
    __slots__ = ["data", "file_index", "offset", "raw_bytes", "zstd"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    FILE_INDEX_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    RAW_BYTES_FIELD_NUMBER: _ClassVar[int]
    ZSTD_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    file_index: int
    offset: int
    raw_bytes: int
    zstd: bool
    def __init__(self, file_index: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., zstd: bool = ..., raw_bytes: _Optional[int] = ...) -> None: ...

class TransferFile(_message.Message):
    __slots__ = ["mode", "name", "sha256", "size_bytes"]
    MODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    mode: int
    name: str
    sha256: bytes
    size_bytes: int
    def __init__(self, name: _Optional[str] = ..., size_bytes: _Optional[int] = ..., mode: _Optional[int] = ..., sha256: _Optional[bytes] = ...) -> None: ...

class TransferManifest(_message.Message):
    __slots__ = ["checkpoints", "chunk_bytes", "compression", "format_version", "total_bytes"]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedCompositeFieldContainer[TransferCheckpoint]
    chunk_bytes: int
    compression: TransferCompression
    format_version: int
    total_bytes: int
    def __init__(self, format_version: _Optional[int] = ..., checkpoints: _Optional[_Iterable[_Union[TransferCheckpoint, _Mapping]]] = ..., compression: _Optional[_Union[TransferCompression, str]] = ..., chunk_bytes: _Optional[int] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class TransferProgressEvent(_message.Message):
    __slots__ = ["bytes_done", "bytes_total"]
    BYTES_DONE_FIELD_NUMBER: _ClassVar[int]
    BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    bytes_done: int
    bytes_total: int
    def __init__(self, bytes_done: _Optional[int] = ..., bytes_total: _Optional[int] = ...) -> None: ...

class UnixSocket(_message.Message):
    __slots__ = ["inode"]
    INODE_FIELD_NUMBER: _ClassVar[int]
    inode: int
    def __init__(self, inode: _Optional[int] = ...) -> None: ...

class VersionRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class VersionResponse(_message.Message):
    __slots__ = ["extra", "gateway_version", "gitid", "major_number", "minor_number", "name", "sublevel"]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_VERSION_FIELD_NUMBER: _ClassVar[int]
    GITID_FIELD_NUMBER: _ClassVar[int]
    MAJOR_NUMBER_FIELD_NUMBER: _ClassVar[int]
    MINOR_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBLEVEL_FIELD_NUMBER: _ClassVar[int]
    extra: int
    gateway_version: str
    gitid: str
    major_number: int
    minor_number: int
    name: str
    sublevel: int
    def __init__(self, major_number: _Optional[int] = ..., minor_number: _Optional[int] = ..., sublevel: _Optional[int] = ..., extra: _Optional[int] = ..., gitid: _Optional[str] = ..., name: _Optional[str] = ..., gateway_version: _Optional[str] = ...) -> None: ...

class VethPair(_message.Message):
    __slots__ = ["if_in", "if_out"]
    IF_IN_FIELD_NUMBER: _ClassVar[int]
    IF_OUT_FIELD_NUMBER: _ClassVar[int]
    if_in: str
    if_out: str
    def __init__(self, if_in: _Optional[str] = ..., if_out: _Optional[str] = ...) -> None: ...

class WaitPidRequest(_message.Message):
    __slots__ = ["pid"]
    PID_FIELD_NUMBER: _ClassVar[int]
    pid: int
    def __init__(self, pid: _Optional[int] = ...) -> None: ...

class WaitPidResponse(_message.Message):
    __slots__ = ["exit_code", "raw_status", "signal"]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    RAW_STATUS_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    exit_code: int
    raw_status: int
    signal: int
    def __init__(self, exit_code: _Optional[int] = ..., signal: _Optional[int] = ..., raw_status: _Optional[int] = ...) -> None: ...

class HostFindingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class CheckpointLogKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class Durability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class CheckpointKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class CheckpointState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class OperationKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class CriuCgMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class CriuNetworkLockMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class CriuPreDumpMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class TransferCompression(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class MigrationMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Technique(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TECHNIQUE_UNSPECIFIED: _ClassVar[Technique]
    TECHNIQUE_PRECOPY: _ClassVar[Technique]
    TECHNIQUE_PRECOPY_AUTOCONVERGE: _ClassVar[Technique]
    TECHNIQUE_PRECOPY_XBZRLE: _ClassVar[Technique]
    TECHNIQUE_PRECOPY_COMPRESS: _ClassVar[Technique]
    TECHNIQUE_POSTCOPY: _ClassVar[Technique]
    TECHNIQUE_COLD: _ClassVar[Technique]

class MoveKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MOVE_KIND_UNSPECIFIED: _ClassVar[MoveKind]
    MOVE_KIND_MIGRATE: _ClassVar[MoveKind]
    MOVE_KIND_RESTART: _ClassVar[MoveKind]

class RecommendationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECOMMENDATION_STATE_UNSPECIFIED: _ClassVar[RecommendationState]
    RECOMMENDATION_STATE_PROPOSED: _ClassVar[RecommendationState]
    RECOMMENDATION_STATE_APPROVED: _ClassVar[RecommendationState]
    RECOMMENDATION_STATE_REJECTED: _ClassVar[RecommendationState]
    RECOMMENDATION_STATE_EXECUTING: _ClassVar[RecommendationState]
    RECOMMENDATION_STATE_SUCCEEDED: _ClassVar[RecommendationState]
    RECOMMENDATION_STATE_FAILED: _ClassVar[RecommendationState]
    RECOMMENDATION_STATE_ABORTED: _ClassVar[RecommendationState]
    RECOMMENDATION_STATE_EXPIRED: _ClassVar[RecommendationState]
    RECOMMENDATION_STATE_CANCELLED: _ClassVar[RecommendationState]
    RECOMMENDATION_STATE_SUPERSEDED: _ClassVar[RecommendationState]

class MoveState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MOVE_STATE_UNSPECIFIED: _ClassVar[MoveState]
    MOVE_STATE_WAITING: _ClassVar[MoveState]
    MOVE_STATE_RUNNING: _ClassVar[MoveState]
    MOVE_STATE_SUCCEEDED: _ClassVar[MoveState]
    MOVE_STATE_FAILED: _ClassVar[MoveState]
    MOVE_STATE_ABORTED: _ClassVar[MoveState]
    MOVE_STATE_DROPPED: _ClassVar[MoveState]

class ClusterGoal(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLUSTER_GOAL_UNSPECIFIED: _ClassVar[ClusterGoal]
    CLUSTER_GOAL_REBALANCE: _ClassVar[ClusterGoal]
    CLUSTER_GOAL_CONSOLIDATE: _ClassVar[ClusterGoal]
    CLUSTER_GOAL_DRAIN: _ClassVar[ClusterGoal]
    CLUSTER_GOAL_EVACUATE: _ClassVar[ClusterGoal]

class MigrationPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MIGRATION_PHASE_UNSPECIFIED: _ClassVar[MigrationPhase]
    MIGRATION_PHASE_QUEUED: _ClassVar[MigrationPhase]
    MIGRATION_PHASE_PRECOPY: _ClassVar[MigrationPhase]
    MIGRATION_PHASE_POSTCOPY: _ClassVar[MigrationPhase]
    MIGRATION_PHASE_SUCCEEDED: _ClassVar[MigrationPhase]
    MIGRATION_PHASE_FAILED: _ClassVar[MigrationPhase]
    MIGRATION_PHASE_ABORTED: _ClassVar[MigrationPhase]
    MIGRATION_PHASE_COLD: _ClassVar[MigrationPhase]
    MIGRATION_PHASE_RESTARTING: _ClassVar[MigrationPhase]

class FailureClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_CLASS_UNSPECIFIED: _ClassVar[FailureClass]
    FAILURE_CLASS_SOURCE_UNRESOLVABLE: _ClassVar[FailureClass]
    FAILURE_CLASS_TARGET_UNRESOLVABLE: _ClassVar[FailureClass]
    FAILURE_CLASS_SOURCE_UNREACHABLE: _ClassVar[FailureClass]
    FAILURE_CLASS_TARGET_UNREACHABLE: _ClassVar[FailureClass]
    FAILURE_CLASS_SOURCE_AUTH_REFUSED: _ClassVar[FailureClass]
    FAILURE_CLASS_TARGET_AUTH_REFUSED: _ClassVar[FailureClass]
    FAILURE_CLASS_SOURCE_DAEMON_GONE: _ClassVar[FailureClass]
    FAILURE_CLASS_TARGET_DAEMON_GONE: _ClassVar[FailureClass]
    FAILURE_CLASS_QEMU_REFUSED: _ClassVar[FailureClass]
    FAILURE_CLASS_ABORTED_BY_MONITOR: _ClassVar[FailureClass]
    FAILURE_CLASS_ABORTED_BY_PERSON: _ClassVar[FailureClass]
    FAILURE_CLASS_DEADLINE: _ClassVar[FailureClass]
    FAILURE_CLASS_GUEST_NOT_FOUND: _ClassVar[FailureClass]
    FAILURE_CLASS_GUEST_NOT_ANSWERING: _ClassVar[FailureClass]
    FAILURE_CLASS_REFUSED_BY_ADVISOR: _ClassVar[FailureClass]
    FAILURE_CLASS_NO_DEFINITION: _ClassVar[FailureClass]
    FAILURE_CLASS_NOT_COMPLETED: _ClassVar[FailureClass]
    FAILURE_CLASS_HYPERVISOR_ERROR: _ClassVar[FailureClass]
TECHNIQUE_UNSPECIFIED: Technique
TECHNIQUE_PRECOPY: Technique
TECHNIQUE_PRECOPY_AUTOCONVERGE: Technique
TECHNIQUE_PRECOPY_XBZRLE: Technique
TECHNIQUE_PRECOPY_COMPRESS: Technique
TECHNIQUE_POSTCOPY: Technique
TECHNIQUE_COLD: Technique
MOVE_KIND_UNSPECIFIED: MoveKind
MOVE_KIND_MIGRATE: MoveKind
MOVE_KIND_RESTART: MoveKind
RECOMMENDATION_STATE_UNSPECIFIED: RecommendationState
RECOMMENDATION_STATE_PROPOSED: RecommendationState
RECOMMENDATION_STATE_APPROVED: RecommendationState
RECOMMENDATION_STATE_REJECTED: RecommendationState
RECOMMENDATION_STATE_EXECUTING: RecommendationState
RECOMMENDATION_STATE_SUCCEEDED: RecommendationState
RECOMMENDATION_STATE_FAILED: RecommendationState
RECOMMENDATION_STATE_ABORTED: RecommendationState
RECOMMENDATION_STATE_EXPIRED: RecommendationState
RECOMMENDATION_STATE_CANCELLED: RecommendationState
RECOMMENDATION_STATE_SUPERSEDED: RecommendationState
MOVE_STATE_UNSPECIFIED: MoveState
MOVE_STATE_WAITING: MoveState
MOVE_STATE_RUNNING: MoveState
MOVE_STATE_SUCCEEDED: MoveState
MOVE_STATE_FAILED: MoveState
MOVE_STATE_ABORTED: MoveState
MOVE_STATE_DROPPED: MoveState
CLUSTER_GOAL_UNSPECIFIED: ClusterGoal
CLUSTER_GOAL_REBALANCE: ClusterGoal
CLUSTER_GOAL_CONSOLIDATE: ClusterGoal
CLUSTER_GOAL_DRAIN: ClusterGoal
CLUSTER_GOAL_EVACUATE: ClusterGoal
MIGRATION_PHASE_UNSPECIFIED: MigrationPhase
MIGRATION_PHASE_QUEUED: MigrationPhase
MIGRATION_PHASE_PRECOPY: MigrationPhase
MIGRATION_PHASE_POSTCOPY: MigrationPhase
MIGRATION_PHASE_SUCCEEDED: MigrationPhase
MIGRATION_PHASE_FAILED: MigrationPhase
MIGRATION_PHASE_ABORTED: MigrationPhase
MIGRATION_PHASE_COLD: MigrationPhase
MIGRATION_PHASE_RESTARTING: MigrationPhase
FAILURE_CLASS_UNSPECIFIED: FailureClass
FAILURE_CLASS_SOURCE_UNRESOLVABLE: FailureClass
FAILURE_CLASS_TARGET_UNRESOLVABLE: FailureClass
FAILURE_CLASS_SOURCE_UNREACHABLE: FailureClass
FAILURE_CLASS_TARGET_UNREACHABLE: FailureClass
FAILURE_CLASS_SOURCE_AUTH_REFUSED: FailureClass
FAILURE_CLASS_TARGET_AUTH_REFUSED: FailureClass
FAILURE_CLASS_SOURCE_DAEMON_GONE: FailureClass
FAILURE_CLASS_TARGET_DAEMON_GONE: FailureClass
FAILURE_CLASS_QEMU_REFUSED: FailureClass
FAILURE_CLASS_ABORTED_BY_MONITOR: FailureClass
FAILURE_CLASS_ABORTED_BY_PERSON: FailureClass
FAILURE_CLASS_DEADLINE: FailureClass
FAILURE_CLASS_GUEST_NOT_FOUND: FailureClass
FAILURE_CLASS_GUEST_NOT_ANSWERING: FailureClass
FAILURE_CLASS_REFUSED_BY_ADVISOR: FailureClass
FAILURE_CLASS_NO_DEFINITION: FailureClass
FAILURE_CLASS_NOT_COMPLETED: FailureClass
FAILURE_CLASS_HYPERVISOR_ERROR: FailureClass

class Host(_message.Message):
    __slots__ = ("id", "cpu_cores", "memory_mib", "cpu_model", "labels", "in_maintenance", "network_bandwidth_mib_s", "hypervisor_uri", "idle_power_w", "max_power_w", "migration_address", "migration_tls", "networks", "local_disk_free_mib")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    CPU_CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    CPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    IN_MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    NETWORK_BANDWIDTH_MIB_S_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_URI_FIELD_NUMBER: _ClassVar[int]
    IDLE_POWER_W_FIELD_NUMBER: _ClassVar[int]
    MAX_POWER_W_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_TLS_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_DISK_FREE_MIB_FIELD_NUMBER: _ClassVar[int]
    id: str
    cpu_cores: int
    memory_mib: int
    cpu_model: str
    labels: _containers.ScalarMap[str, str]
    in_maintenance: bool
    network_bandwidth_mib_s: float
    hypervisor_uri: str
    idle_power_w: float
    max_power_w: float
    migration_address: str
    migration_tls: bool
    networks: _containers.RepeatedScalarFieldContainer[str]
    local_disk_free_mib: int
    def __init__(self, id: _Optional[str] = ..., cpu_cores: _Optional[int] = ..., memory_mib: _Optional[int] = ..., cpu_model: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., in_maintenance: _Optional[bool] = ..., network_bandwidth_mib_s: _Optional[float] = ..., hypervisor_uri: _Optional[str] = ..., idle_power_w: _Optional[float] = ..., max_power_w: _Optional[float] = ..., migration_address: _Optional[str] = ..., migration_tls: _Optional[bool] = ..., networks: _Optional[_Iterable[str]] = ..., local_disk_free_mib: _Optional[int] = ...) -> None: ...

class Disk(_message.Message):
    __slots__ = ("target", "size_mib", "used_mib", "shared", "write_rate_mib_s")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SIZE_MIB_FIELD_NUMBER: _ClassVar[int]
    USED_MIB_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    WRITE_RATE_MIB_S_FIELD_NUMBER: _ClassVar[int]
    target: str
    size_mib: int
    used_mib: int
    shared: bool
    write_rate_mib_s: float
    def __init__(self, target: _Optional[str] = ..., size_mib: _Optional[int] = ..., used_mib: _Optional[int] = ..., shared: _Optional[bool] = ..., write_rate_mib_s: _Optional[float] = ...) -> None: ...

class Vm(_message.Message):
    __slots__ = ("id", "host_id", "memory_mib", "vcpus", "labels", "affinity_groups", "anti_affinity_groups", "cpu_model", "postcopy_forbidden", "networks", "disks")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    AFFINITY_GROUPS_FIELD_NUMBER: _ClassVar[int]
    ANTI_AFFINITY_GROUPS_FIELD_NUMBER: _ClassVar[int]
    CPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    POSTCOPY_FORBIDDEN_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    DISKS_FIELD_NUMBER: _ClassVar[int]
    id: str
    host_id: str
    memory_mib: int
    vcpus: int
    labels: _containers.ScalarMap[str, str]
    affinity_groups: _containers.RepeatedScalarFieldContainer[str]
    anti_affinity_groups: _containers.RepeatedScalarFieldContainer[str]
    cpu_model: str
    postcopy_forbidden: bool
    networks: _containers.RepeatedScalarFieldContainer[str]
    disks: _containers.RepeatedCompositeFieldContainer[Disk]
    def __init__(self, id: _Optional[str] = ..., host_id: _Optional[str] = ..., memory_mib: _Optional[int] = ..., vcpus: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., affinity_groups: _Optional[_Iterable[str]] = ..., anti_affinity_groups: _Optional[_Iterable[str]] = ..., cpu_model: _Optional[str] = ..., postcopy_forbidden: _Optional[bool] = ..., networks: _Optional[_Iterable[str]] = ..., disks: _Optional[_Iterable[_Union[Disk, _Mapping]]] = ...) -> None: ...

class PushInventoryRequest(_message.Message):
    __slots__ = ("hosts", "vms", "removed_host_ids", "removed_vm_ids")
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    VMS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_VM_IDS_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[Host]
    vms: _containers.RepeatedCompositeFieldContainer[Vm]
    removed_host_ids: _containers.RepeatedScalarFieldContainer[str]
    removed_vm_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, hosts: _Optional[_Iterable[_Union[Host, _Mapping]]] = ..., vms: _Optional[_Iterable[_Union[Vm, _Mapping]]] = ..., removed_host_ids: _Optional[_Iterable[str]] = ..., removed_vm_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class PushInventoryResponse(_message.Message):
    __slots__ = ("hosts_upserted", "vms_upserted", "hosts_removed", "vms_removed")
    HOSTS_UPSERTED_FIELD_NUMBER: _ClassVar[int]
    VMS_UPSERTED_FIELD_NUMBER: _ClassVar[int]
    HOSTS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    VMS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    hosts_upserted: int
    vms_upserted: int
    hosts_removed: int
    vms_removed: int
    def __init__(self, hosts_upserted: _Optional[int] = ..., vms_upserted: _Optional[int] = ..., hosts_removed: _Optional[int] = ..., vms_removed: _Optional[int] = ...) -> None: ...

class ListHostsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class HostStatus(_message.Message):
    __slots__ = ("host", "vm_count", "allocated_memory_mib", "allocated_vcpus", "cpu_utilization_ratio", "last_sample_time")
    HOST_FIELD_NUMBER: _ClassVar[int]
    VM_COUNT_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_VCPUS_FIELD_NUMBER: _ClassVar[int]
    CPU_UTILIZATION_RATIO_FIELD_NUMBER: _ClassVar[int]
    LAST_SAMPLE_TIME_FIELD_NUMBER: _ClassVar[int]
    host: Host
    vm_count: int
    allocated_memory_mib: int
    allocated_vcpus: int
    cpu_utilization_ratio: float
    last_sample_time: _timestamp_pb2.Timestamp
    def __init__(self, host: _Optional[_Union[Host, _Mapping]] = ..., vm_count: _Optional[int] = ..., allocated_memory_mib: _Optional[int] = ..., allocated_vcpus: _Optional[int] = ..., cpu_utilization_ratio: _Optional[float] = ..., last_sample_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListHostsResponse(_message.Message):
    __slots__ = ("hosts", "next_page_token")
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[HostStatus]
    next_page_token: str
    def __init__(self, hosts: _Optional[_Iterable[_Union[HostStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListVmsRequest(_message.Message):
    __slots__ = ("host_id", "page_size", "page_token")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    page_size: int
    page_token: str
    def __init__(self, host_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class VmStatus(_message.Message):
    __slots__ = ("vm", "cpu_utilization_ratio", "dirty_rate_mib_s", "last_sample_time")
    VM_FIELD_NUMBER: _ClassVar[int]
    CPU_UTILIZATION_RATIO_FIELD_NUMBER: _ClassVar[int]
    DIRTY_RATE_MIB_S_FIELD_NUMBER: _ClassVar[int]
    LAST_SAMPLE_TIME_FIELD_NUMBER: _ClassVar[int]
    vm: Vm
    cpu_utilization_ratio: float
    dirty_rate_mib_s: float
    last_sample_time: _timestamp_pb2.Timestamp
    def __init__(self, vm: _Optional[_Union[Vm, _Mapping]] = ..., cpu_utilization_ratio: _Optional[float] = ..., dirty_rate_mib_s: _Optional[float] = ..., last_sample_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListVmsResponse(_message.Message):
    __slots__ = ("vms", "next_page_token")
    VMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    vms: _containers.RepeatedCompositeFieldContainer[VmStatus]
    next_page_token: str
    def __init__(self, vms: _Optional[_Iterable[_Union[VmStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class HostSample(_message.Message):
    __slots__ = ("host_id", "time", "cpu_utilization_ratio", "memory_used_mib", "network_rx_mib_s", "network_tx_mib_s", "power_w", "load_per_cpu_ratio")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CPU_UTILIZATION_RATIO_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_MIB_FIELD_NUMBER: _ClassVar[int]
    NETWORK_RX_MIB_S_FIELD_NUMBER: _ClassVar[int]
    NETWORK_TX_MIB_S_FIELD_NUMBER: _ClassVar[int]
    POWER_W_FIELD_NUMBER: _ClassVar[int]
    LOAD_PER_CPU_RATIO_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    time: _timestamp_pb2.Timestamp
    cpu_utilization_ratio: float
    memory_used_mib: float
    network_rx_mib_s: float
    network_tx_mib_s: float
    power_w: float
    load_per_cpu_ratio: float
    def __init__(self, host_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cpu_utilization_ratio: _Optional[float] = ..., memory_used_mib: _Optional[float] = ..., network_rx_mib_s: _Optional[float] = ..., network_tx_mib_s: _Optional[float] = ..., power_w: _Optional[float] = ..., load_per_cpu_ratio: _Optional[float] = ...) -> None: ...

class VmSample(_message.Message):
    __slots__ = ("vm_id", "time", "cpu_utilization_ratio", "memory_used_mib", "dirty_rate_mib_s", "working_set_mib", "resident_memory_mib")
    VM_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CPU_UTILIZATION_RATIO_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_MIB_FIELD_NUMBER: _ClassVar[int]
    DIRTY_RATE_MIB_S_FIELD_NUMBER: _ClassVar[int]
    WORKING_SET_MIB_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    vm_id: str
    time: _timestamp_pb2.Timestamp
    cpu_utilization_ratio: float
    memory_used_mib: float
    dirty_rate_mib_s: float
    working_set_mib: float
    resident_memory_mib: float
    def __init__(self, vm_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cpu_utilization_ratio: _Optional[float] = ..., memory_used_mib: _Optional[float] = ..., dirty_rate_mib_s: _Optional[float] = ..., working_set_mib: _Optional[float] = ..., resident_memory_mib: _Optional[float] = ...) -> None: ...

class PushSamplesRequest(_message.Message):
    __slots__ = ("host_samples", "vm_samples")
    HOST_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    VM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    host_samples: _containers.RepeatedCompositeFieldContainer[HostSample]
    vm_samples: _containers.RepeatedCompositeFieldContainer[VmSample]
    def __init__(self, host_samples: _Optional[_Iterable[_Union[HostSample, _Mapping]]] = ..., vm_samples: _Optional[_Iterable[_Union[VmSample, _Mapping]]] = ...) -> None: ...

class PushSamplesResponse(_message.Message):
    __slots__ = ("host_samples_accepted", "vm_samples_accepted", "batches_accepted")
    HOST_SAMPLES_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    VM_SAMPLES_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    BATCHES_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    host_samples_accepted: int
    vm_samples_accepted: int
    batches_accepted: int
    def __init__(self, host_samples_accepted: _Optional[int] = ..., vm_samples_accepted: _Optional[int] = ..., batches_accepted: _Optional[int] = ...) -> None: ...

class Estimate(_message.Message):
    __slots__ = ("low", "median", "high")
    LOW_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    low: float
    median: float
    high: float
    def __init__(self, low: _Optional[float] = ..., median: _Optional[float] = ..., high: _Optional[float] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "interval_kind", "fallback_reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_KIND_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    interval_kind: str
    fallback_reason: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., interval_kind: _Optional[str] = ..., fallback_reason: _Optional[str] = ...) -> None: ...

class MigrationCost(_message.Message):
    __slots__ = ("technique", "total_time_ms", "downtime_ms", "transferred_mib", "converges", "model", "notes", "converge_probability")
    TECHNIQUE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    TRANSFERRED_MIB_FIELD_NUMBER: _ClassVar[int]
    CONVERGES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    CONVERGE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    technique: Technique
    total_time_ms: Estimate
    downtime_ms: Estimate
    transferred_mib: Estimate
    converges: bool
    model: ModelInfo
    notes: _containers.RepeatedScalarFieldContainer[str]
    converge_probability: float
    def __init__(self, technique: _Optional[_Union[Technique, str]] = ..., total_time_ms: _Optional[_Union[Estimate, _Mapping]] = ..., downtime_ms: _Optional[_Union[Estimate, _Mapping]] = ..., transferred_mib: _Optional[_Union[Estimate, _Mapping]] = ..., converges: _Optional[bool] = ..., model: _Optional[_Union[ModelInfo, _Mapping]] = ..., notes: _Optional[_Iterable[str]] = ..., converge_probability: _Optional[float] = ...) -> None: ...

class MigrationInputs(_message.Message):
    __slots__ = ("memory_mib", "dirty_rate_mib_s", "dirty_rate_source", "bandwidth_mib_s", "max_bandwidth_mib_s", "max_downtime_ms", "bandwidth_source", "local_disk_used_mib", "local_disk_size_mib", "disk_write_rate_mib_s", "load_per_cpu_ratio", "resident_memory_mib")
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    DIRTY_RATE_MIB_S_FIELD_NUMBER: _ClassVar[int]
    DIRTY_RATE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_MIB_S_FIELD_NUMBER: _ClassVar[int]
    MAX_BANDWIDTH_MIB_S_FIELD_NUMBER: _ClassVar[int]
    MAX_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_SOURCE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_DISK_USED_MIB_FIELD_NUMBER: _ClassVar[int]
    LOCAL_DISK_SIZE_MIB_FIELD_NUMBER: _ClassVar[int]
    DISK_WRITE_RATE_MIB_S_FIELD_NUMBER: _ClassVar[int]
    LOAD_PER_CPU_RATIO_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    memory_mib: float
    dirty_rate_mib_s: float
    dirty_rate_source: str
    bandwidth_mib_s: float
    max_bandwidth_mib_s: float
    max_downtime_ms: float
    bandwidth_source: str
    local_disk_used_mib: float
    local_disk_size_mib: float
    disk_write_rate_mib_s: float
    load_per_cpu_ratio: float
    resident_memory_mib: float
    def __init__(self, memory_mib: _Optional[float] = ..., dirty_rate_mib_s: _Optional[float] = ..., dirty_rate_source: _Optional[str] = ..., bandwidth_mib_s: _Optional[float] = ..., max_bandwidth_mib_s: _Optional[float] = ..., max_downtime_ms: _Optional[float] = ..., bandwidth_source: _Optional[str] = ..., local_disk_used_mib: _Optional[float] = ..., local_disk_size_mib: _Optional[float] = ..., disk_write_rate_mib_s: _Optional[float] = ..., load_per_cpu_ratio: _Optional[float] = ..., resident_memory_mib: _Optional[float] = ...) -> None: ...

class PredictMigrationCostRequest(_message.Message):
    __slots__ = ("vm_id", "target_host_id", "techniques", "dirty_rate_mib_s", "bandwidth_mib_s", "max_bandwidth_mib_s", "max_downtime_ms")
    VM_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_HOST_ID_FIELD_NUMBER: _ClassVar[int]
    TECHNIQUES_FIELD_NUMBER: _ClassVar[int]
    DIRTY_RATE_MIB_S_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_MIB_S_FIELD_NUMBER: _ClassVar[int]
    MAX_BANDWIDTH_MIB_S_FIELD_NUMBER: _ClassVar[int]
    MAX_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    vm_id: str
    target_host_id: str
    techniques: _containers.RepeatedScalarFieldContainer[Technique]
    dirty_rate_mib_s: float
    bandwidth_mib_s: float
    max_bandwidth_mib_s: float
    max_downtime_ms: float
    def __init__(self, vm_id: _Optional[str] = ..., target_host_id: _Optional[str] = ..., techniques: _Optional[_Iterable[_Union[Technique, str]]] = ..., dirty_rate_mib_s: _Optional[float] = ..., bandwidth_mib_s: _Optional[float] = ..., max_bandwidth_mib_s: _Optional[float] = ..., max_downtime_ms: _Optional[float] = ...) -> None: ...

class PredictMigrationCostResponse(_message.Message):
    __slots__ = ("inputs", "costs")
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    COSTS_FIELD_NUMBER: _ClassVar[int]
    inputs: MigrationInputs
    costs: _containers.RepeatedCompositeFieldContainer[MigrationCost]
    def __init__(self, inputs: _Optional[_Union[MigrationInputs, _Mapping]] = ..., costs: _Optional[_Iterable[_Union[MigrationCost, _Mapping]]] = ...) -> None: ...

class Objective(_message.Message):
    __slots__ = ("max_downtime_ms", "deadline_ms", "minimize_transferred")
    MAX_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    MINIMIZE_TRANSFERRED_FIELD_NUMBER: _ClassVar[int]
    max_downtime_ms: float
    deadline_ms: float
    minimize_transferred: bool
    def __init__(self, max_downtime_ms: _Optional[float] = ..., deadline_ms: _Optional[float] = ..., minimize_transferred: _Optional[bool] = ...) -> None: ...

class MigrationParameters(_message.Message):
    __slots__ = ("technique", "bandwidth_mib_s", "max_downtime_ms", "postcopy_after_ms", "deadline_ms", "autoconverge_initial_pct", "autoconverge_increment_pct", "compression_threads", "postcopy_bandwidth_mib_s", "tls", "shutdown_timeout_ms", "kind", "migrate_disks")
    TECHNIQUE_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_MIB_S_FIELD_NUMBER: _ClassVar[int]
    MAX_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    POSTCOPY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    AUTOCONVERGE_INITIAL_PCT_FIELD_NUMBER: _ClassVar[int]
    AUTOCONVERGE_INCREMENT_PCT_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_THREADS_FIELD_NUMBER: _ClassVar[int]
    POSTCOPY_BANDWIDTH_MIB_S_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MIGRATE_DISKS_FIELD_NUMBER: _ClassVar[int]
    technique: Technique
    bandwidth_mib_s: float
    max_downtime_ms: float
    postcopy_after_ms: float
    deadline_ms: float
    autoconverge_initial_pct: int
    autoconverge_increment_pct: int
    compression_threads: int
    postcopy_bandwidth_mib_s: float
    tls: bool
    shutdown_timeout_ms: float
    kind: MoveKind
    migrate_disks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, technique: _Optional[_Union[Technique, str]] = ..., bandwidth_mib_s: _Optional[float] = ..., max_downtime_ms: _Optional[float] = ..., postcopy_after_ms: _Optional[float] = ..., deadline_ms: _Optional[float] = ..., autoconverge_initial_pct: _Optional[int] = ..., autoconverge_increment_pct: _Optional[int] = ..., compression_threads: _Optional[int] = ..., postcopy_bandwidth_mib_s: _Optional[float] = ..., tls: _Optional[bool] = ..., shutdown_timeout_ms: _Optional[float] = ..., kind: _Optional[_Union[MoveKind, str]] = ..., migrate_disks: _Optional[_Iterable[str]] = ...) -> None: ...

class HostAssessment(_message.Message):
    __slots__ = ("host_id", "eligible", "rejections", "score", "cpu_after_ratio", "memory_after_ratio")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CPU_AFTER_RATIO_FIELD_NUMBER: _ClassVar[int]
    MEMORY_AFTER_RATIO_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    eligible: bool
    rejections: _containers.RepeatedScalarFieldContainer[str]
    score: float
    cpu_after_ratio: float
    memory_after_ratio: float
    def __init__(self, host_id: _Optional[str] = ..., eligible: _Optional[bool] = ..., rejections: _Optional[_Iterable[str]] = ..., score: _Optional[float] = ..., cpu_after_ratio: _Optional[float] = ..., memory_after_ratio: _Optional[float] = ...) -> None: ...

class Move(_message.Message):
    __slots__ = ("vm_id", "source_host_id", "target_host_id", "parameters", "predicted_cost", "reasons", "assessments", "rejection_counts", "hosts_assessed", "state", "attempts", "operation_id")
    VM_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_HOST_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_HOST_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_COST_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    ASSESSMENTS_FIELD_NUMBER: _ClassVar[int]
    REJECTION_COUNTS_FIELD_NUMBER: _ClassVar[int]
    HOSTS_ASSESSED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    vm_id: str
    source_host_id: str
    target_host_id: str
    parameters: MigrationParameters
    predicted_cost: MigrationCost
    reasons: _containers.RepeatedScalarFieldContainer[str]
    assessments: _containers.RepeatedCompositeFieldContainer[HostAssessment]
    rejection_counts: _containers.RepeatedCompositeFieldContainer[RejectionCount]
    hosts_assessed: int
    state: MoveState
    attempts: int
    operation_id: str
    def __init__(self, vm_id: _Optional[str] = ..., source_host_id: _Optional[str] = ..., target_host_id: _Optional[str] = ..., parameters: _Optional[_Union[MigrationParameters, _Mapping]] = ..., predicted_cost: _Optional[_Union[MigrationCost, _Mapping]] = ..., reasons: _Optional[_Iterable[str]] = ..., assessments: _Optional[_Iterable[_Union[HostAssessment, _Mapping]]] = ..., rejection_counts: _Optional[_Iterable[_Union[RejectionCount, _Mapping]]] = ..., hosts_assessed: _Optional[int] = ..., state: _Optional[_Union[MoveState, str]] = ..., attempts: _Optional[int] = ..., operation_id: _Optional[str] = ...) -> None: ...

class RejectionCount(_message.Message):
    __slots__ = ("filter", "hosts", "example_host_id")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_HOST_ID_FIELD_NUMBER: _ClassVar[int]
    filter: str
    hosts: int
    example_host_id: str
    def __init__(self, filter: _Optional[str] = ..., hosts: _Optional[int] = ..., example_host_id: _Optional[str] = ...) -> None: ...

class ListHostAssessmentsRequest(_message.Message):
    __slots__ = ("recommendation_id", "move_index", "page_size", "page_token")
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    MOVE_INDEX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    recommendation_id: str
    move_index: int
    page_size: int
    page_token: str
    def __init__(self, recommendation_id: _Optional[str] = ..., move_index: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListHostAssessmentsResponse(_message.Message):
    __slots__ = ("assessments", "next_page_token", "total")
    ASSESSMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    assessments: _containers.RepeatedCompositeFieldContainer[HostAssessment]
    next_page_token: str
    total: int
    def __init__(self, assessments: _Optional[_Iterable[_Union[HostAssessment, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...

class StateChange(_message.Message):
    __slots__ = ("time", "state", "actor", "reason")
    TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    state: RecommendationState
    actor: str
    reason: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[RecommendationState, str]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Recommendation(_message.Message):
    __slots__ = ("id", "goal", "state", "create_time", "moves", "summary", "decided_by", "decision_reason", "decide_time", "priority", "priority_reason", "benefit", "benefit_unit", "benefit_over_cost", "automation_level", "cluster", "expiry_reason", "cancel_requested", "run_requested_by", "history", "moves_total", "superseded_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    DECISION_REASON_FIELD_NUMBER: _ClassVar[int]
    DECIDE_TIME_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_REASON_FIELD_NUMBER: _ClassVar[int]
    BENEFIT_FIELD_NUMBER: _ClassVar[int]
    BENEFIT_UNIT_FIELD_NUMBER: _ClassVar[int]
    BENEFIT_OVER_COST_FIELD_NUMBER: _ClassVar[int]
    AUTOMATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_REASON_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    RUN_REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    MOVES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    goal: str
    state: RecommendationState
    create_time: _timestamp_pb2.Timestamp
    moves: _containers.RepeatedCompositeFieldContainer[Move]
    summary: str
    decided_by: str
    decision_reason: str
    decide_time: _timestamp_pb2.Timestamp
    priority: int
    priority_reason: str
    benefit: float
    benefit_unit: str
    benefit_over_cost: float
    automation_level: str
    cluster: str
    expiry_reason: str
    cancel_requested: bool
    run_requested_by: str
    history: _containers.RepeatedCompositeFieldContainer[StateChange]
    moves_total: int
    superseded_by: str
    def __init__(self, id: _Optional[str] = ..., goal: _Optional[str] = ..., state: _Optional[_Union[RecommendationState, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., moves: _Optional[_Iterable[_Union[Move, _Mapping]]] = ..., summary: _Optional[str] = ..., decided_by: _Optional[str] = ..., decision_reason: _Optional[str] = ..., decide_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., priority: _Optional[int] = ..., priority_reason: _Optional[str] = ..., benefit: _Optional[float] = ..., benefit_unit: _Optional[str] = ..., benefit_over_cost: _Optional[float] = ..., automation_level: _Optional[str] = ..., cluster: _Optional[str] = ..., expiry_reason: _Optional[str] = ..., cancel_requested: _Optional[bool] = ..., run_requested_by: _Optional[str] = ..., history: _Optional[_Iterable[_Union[StateChange, _Mapping]]] = ..., moves_total: _Optional[int] = ..., superseded_by: _Optional[str] = ...) -> None: ...

class ListMovesRequest(_message.Message):
    __slots__ = ("recommendation_id", "page_size", "page_token")
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    recommendation_id: str
    page_size: int
    page_token: str
    def __init__(self, recommendation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMovesResponse(_message.Message):
    __slots__ = ("moves", "next_page_token")
    MOVES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    moves: _containers.RepeatedCompositeFieldContainer[Move]
    next_page_token: str
    def __init__(self, moves: _Optional[_Iterable[_Union[Move, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RecommendTargetRequest(_message.Message):
    __slots__ = ("vm_id", "objective", "excluded_host_ids", "dry_run")
    VM_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    vm_id: str
    objective: Objective
    excluded_host_ids: _containers.RepeatedScalarFieldContainer[str]
    dry_run: bool
    def __init__(self, vm_id: _Optional[str] = ..., objective: _Optional[_Union[Objective, _Mapping]] = ..., excluded_host_ids: _Optional[_Iterable[str]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class PlanClusterRequest(_message.Message):
    __slots__ = ("goal", "host_id", "max_moves", "objective", "dry_run", "store_empty", "force")
    GOAL_FIELD_NUMBER: _ClassVar[int]
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_MOVES_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    STORE_EMPTY_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    goal: ClusterGoal
    host_id: str
    max_moves: int
    objective: Objective
    dry_run: bool
    store_empty: bool
    force: bool
    def __init__(self, goal: _Optional[_Union[ClusterGoal, str]] = ..., host_id: _Optional[str] = ..., max_moves: _Optional[int] = ..., objective: _Optional[_Union[Objective, _Mapping]] = ..., dry_run: _Optional[bool] = ..., store_empty: _Optional[bool] = ..., force: _Optional[bool] = ...) -> None: ...

class ListRecommendationsRequest(_message.Message):
    __slots__ = ("state", "page_size", "page_token")
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    state: RecommendationState
    page_size: int
    page_token: str
    def __init__(self, state: _Optional[_Union[RecommendationState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRecommendationsResponse(_message.Message):
    __slots__ = ("recommendations", "next_page_token")
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    recommendations: _containers.RepeatedCompositeFieldContainer[Recommendation]
    next_page_token: str
    def __init__(self, recommendations: _Optional[_Iterable[_Union[Recommendation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetRecommendationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DecideRecommendationRequest(_message.Message):
    __slots__ = ("id", "actor", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    actor: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PlaceVmRequest(_message.Message):
    __slots__ = ("vm", "excluded_host_ids")
    VM_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    vm: Vm
    excluded_host_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, vm: _Optional[_Union[Vm, _Mapping]] = ..., excluded_host_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class PlaceVmResponse(_message.Message):
    __slots__ = ("host_id", "placed", "automation_level", "cluster", "placed_by", "reasons", "assessments", "rejection_counts")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    PLACED_FIELD_NUMBER: _ClassVar[int]
    AUTOMATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    PLACED_BY_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    ASSESSMENTS_FIELD_NUMBER: _ClassVar[int]
    REJECTION_COUNTS_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    placed: bool
    automation_level: str
    cluster: str
    placed_by: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    assessments: _containers.RepeatedCompositeFieldContainer[HostAssessment]
    rejection_counts: _containers.RepeatedCompositeFieldContainer[RejectionCount]
    def __init__(self, host_id: _Optional[str] = ..., placed: _Optional[bool] = ..., automation_level: _Optional[str] = ..., cluster: _Optional[str] = ..., placed_by: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ..., assessments: _Optional[_Iterable[_Union[HostAssessment, _Mapping]]] = ..., rejection_counts: _Optional[_Iterable[_Union[RejectionCount, _Mapping]]] = ...) -> None: ...

class ClusterAutomation(_message.Message):
    __slots__ = ("cluster", "level", "min_benefit_over_cost", "updated_by", "update_time")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MIN_BENEFIT_OVER_COST_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    level: str
    min_benefit_over_cost: float
    updated_by: str
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, cluster: _Optional[str] = ..., level: _Optional[str] = ..., min_benefit_over_cost: _Optional[float] = ..., updated_by: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetAutomationRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAutomationResponse(_message.Message):
    __slots__ = ("clusters",)
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    clusters: _containers.RepeatedCompositeFieldContainer[ClusterAutomation]
    def __init__(self, clusters: _Optional[_Iterable[_Union[ClusterAutomation, _Mapping]]] = ...) -> None: ...

class ExecuteMigrationRequest(_message.Message):
    __slots__ = ("recommendation_id", "actor", "move_index", "retry")
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    MOVE_INDEX_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    recommendation_id: str
    actor: str
    move_index: int
    retry: bool
    def __init__(self, recommendation_id: _Optional[str] = ..., actor: _Optional[str] = ..., move_index: _Optional[int] = ..., retry: _Optional[bool] = ...) -> None: ...

class RunRecommendationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListMigrationsRequest(_message.Message):
    __slots__ = ("running_only", "page_size", "page_token")
    RUNNING_ONLY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    running_only: bool
    page_size: int
    page_token: str
    def __init__(self, running_only: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMigrationsResponse(_message.Message):
    __slots__ = ("operations", "next_page_token")
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    operations: _containers.RepeatedCompositeFieldContainer[Operation]
    next_page_token: str
    def __init__(self, operations: _Optional[_Iterable[_Union[Operation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Operation(_message.Message):
    __slots__ = ("operation_id", "recommendation_id", "phase", "predicted_cost", "outcome", "create_time", "message", "move_index", "vm_id", "attempt", "source_host_id", "target_host_id", "parameters", "end_time")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_COST_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MOVE_INDEX_FIELD_NUMBER: _ClassVar[int]
    VM_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_HOST_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_HOST_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    recommendation_id: str
    phase: MigrationPhase
    predicted_cost: MigrationCost
    outcome: MigrationOutcome
    create_time: _timestamp_pb2.Timestamp
    message: str
    move_index: int
    vm_id: str
    attempt: int
    source_host_id: str
    target_host_id: str
    parameters: MigrationParameters
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, operation_id: _Optional[str] = ..., recommendation_id: _Optional[str] = ..., phase: _Optional[_Union[MigrationPhase, str]] = ..., predicted_cost: _Optional[_Union[MigrationCost, _Mapping]] = ..., outcome: _Optional[_Union[MigrationOutcome, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ..., move_index: _Optional[int] = ..., vm_id: _Optional[str] = ..., attempt: _Optional[int] = ..., source_host_id: _Optional[str] = ..., target_host_id: _Optional[str] = ..., parameters: _Optional[_Union[MigrationParameters, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MigrationOutcome(_message.Message):
    __slots__ = ("total_time_ms", "downtime_ms", "transferred_mib", "iterations", "postcopy_requests", "failure_class")
    TOTAL_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    TRANSFERRED_MIB_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    POSTCOPY_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CLASS_FIELD_NUMBER: _ClassVar[int]
    total_time_ms: float
    downtime_ms: float
    transferred_mib: float
    iterations: int
    postcopy_requests: int
    failure_class: FailureClass
    def __init__(self, total_time_ms: _Optional[float] = ..., downtime_ms: _Optional[float] = ..., transferred_mib: _Optional[float] = ..., iterations: _Optional[int] = ..., postcopy_requests: _Optional[int] = ..., failure_class: _Optional[_Union[FailureClass, str]] = ...) -> None: ...

class WatchMigrationRequest(_message.Message):
    __slots__ = ("operation_id",)
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    def __init__(self, operation_id: _Optional[str] = ...) -> None: ...

class MigrationProgress(_message.Message):
    __slots__ = ("operation_id", "vm_id", "phase", "elapsed_ms", "memory_total_mib", "memory_remaining_mib", "dirty_rate_mib_s", "transfer_rate_mib_s", "iteration", "expected_downtime_ms", "autoconverge_throttle_pct", "message", "eta_ms", "converging", "progress_ratio", "estimate")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    VM_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_MIB_FIELD_NUMBER: _ClassVar[int]
    MEMORY_REMAINING_MIB_FIELD_NUMBER: _ClassVar[int]
    DIRTY_RATE_MIB_S_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_RATE_MIB_S_FIELD_NUMBER: _ClassVar[int]
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    AUTOCONVERGE_THROTTLE_PCT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ETA_MS_FIELD_NUMBER: _ClassVar[int]
    CONVERGING_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_RATIO_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    vm_id: str
    phase: MigrationPhase
    elapsed_ms: float
    memory_total_mib: float
    memory_remaining_mib: float
    dirty_rate_mib_s: float
    transfer_rate_mib_s: float
    iteration: int
    expected_downtime_ms: float
    autoconverge_throttle_pct: int
    message: str
    eta_ms: float
    converging: bool
    progress_ratio: float
    estimate: str
    def __init__(self, operation_id: _Optional[str] = ..., vm_id: _Optional[str] = ..., phase: _Optional[_Union[MigrationPhase, str]] = ..., elapsed_ms: _Optional[float] = ..., memory_total_mib: _Optional[float] = ..., memory_remaining_mib: _Optional[float] = ..., dirty_rate_mib_s: _Optional[float] = ..., transfer_rate_mib_s: _Optional[float] = ..., iteration: _Optional[int] = ..., expected_downtime_ms: _Optional[float] = ..., autoconverge_throttle_pct: _Optional[int] = ..., message: _Optional[str] = ..., eta_ms: _Optional[float] = ..., converging: _Optional[bool] = ..., progress_ratio: _Optional[float] = ..., estimate: _Optional[str] = ...) -> None: ...

class AbortMigrationRequest(_message.Message):
    __slots__ = ("operation_id", "reason")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    reason: str
    def __init__(self, operation_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetMigrationRequest(_message.Message):
    __slots__ = ("operation_id",)
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    def __init__(self, operation_id: _Optional[str] = ...) -> None: ...

# Type stubs of generated/qcow2.py, written by formats/tools/pystubs.py (formats/regen.sh): never edit by hand.
from enum import IntEnum
from typing import Any

class Qcow2:
    class BitmapType(IntEnum):
        dirty_tracking = 1
    class ClusterStatus(IntEnum):
        unallocated = 0
        zero = 1
        data = 2
        compressed = 3
        mixed = 4
    class ClusterType(IntEnum):
        unallocated = 0
        zero_plain = 1
        zero_allocated = 2
        normal = 3
        compressed = 4
    class CompressionType(IntEnum):
        zlib = 0
        zstd = 1
    class CryptMethod(IntEnum):
        none = 0
        aes = 1
        luks = 2
    class FeatureType(IntEnum):
        incompatible = 0
        compatible = 1
        autoclear = 2
    class HeaderExtensionType(IntEnum):
        end = 0
        full_disk_encryption = 87539319
        bitmaps = 595929205
        external_data_file = 1145132097
        feature_name_table = 1745090647
        backing_file_format = 3799591626
    class LuksKeySlotState(IntEnum):
        disabled = 57005
        enabled = 11301363
    class SubclusterStatus(IntEnum):
        unallocated = 0
        allocated = 1
        zero = 2
    class AutoclearFeatures:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        reserved_hi: int
        reserved_lo: int
        has_raw_external_data: bool
        has_bitmaps: bool
    class BitmapDirectory:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        entries: list[Qcow2.BitmapDirectoryEntry]
    class BitmapDirectoryEntry:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        ofs_bitmap_table: int
        num_bitmap_table_entries: int
        flags: Qcow2.BitmapFlags
        bitmap_type: Qcow2.BitmapType
        granularity_bits: int
        len_name: int
        len_extra_data: int
        extra_data: bytes
        name: str
        padding: bytes
        @property
        def bitmap_table(self) -> list[Qcow2.BitmapTableEntry]: ...
    class BitmapFlags:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        reserved: int
        is_extra_data_compatible: bool
        is_auto: bool
        is_in_use: bool
    class BitmapTableEntry:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        reserved_hi: int
        ofs_hi: int
        ofs_lo: int
        reserved_lo: int
        is_all_ones: bool
        @property
        def data(self) -> bytes | None: ...
        @property
        def ofs_bitmap_data(self) -> int: ...
    class BitmapsExtension:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        num_bitmaps: int
        reserved: int
        len_bitmap_directory: int
        ofs_bitmap_directory: int
        @property
        def bitmap_directory(self) -> Qcow2.BitmapDirectory: ...
    class CompatibleFeatures:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        reserved_hi: int
        reserved_lo: int
        has_lazy_refcounts: bool
    class FeatureName:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        feature_type: Qcow2.FeatureType | int
        bit_number: int
        name: str
    class FeatureNameTable:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        entries: list[Qcow2.FeatureName]
    class FullDiskEncryptionHeaderPointer:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        ofs_encryption_header: int
        len_encryption_header: int
        @property
        def encryption_header(self) -> Qcow2.LuksHeader | bytes | None: ...
    class GuestCluster:
        def __init__(self, idx: int, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        idx: int
        @property
        def l1_entry(self) -> Qcow2.L1Entry | None: ...
        @property
        def l1_index(self) -> int: ...
        @property
        def l2_entry(self) -> Qcow2.L2Entry | None: ...
        @property
        def l2_index(self) -> int: ...
        @property
        def ofs_guest(self) -> int: ...
    class Header:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        magic: bytes
        version: int
        ofs_backing_file: int
        len_backing_file: int
        cluster_bits: int
        len_virtual_disk: int
        crypt_method: Qcow2.CryptMethod
        num_l1_entries: int
        ofs_l1_table: int
        ofs_refcount_table: int
        num_refcount_table_clusters: int
        num_snapshots: int
        ofs_snapshots: int
        incompatible_features: Qcow2.IncompatibleFeatures
        compatible_features: Qcow2.CompatibleFeatures
        autoclear_features: Qcow2.AutoclearFeatures
        refcount_order: int
        len_header: int
        compression_type: Qcow2.CompressionType | int
        padding: bytes
        @property
        def cluster_size(self) -> int: ...
        @property
        def compression(self) -> Qcow2.CompressionType | int: ...
        @property
        def has_extended_l2(self) -> bool: ...
        @property
        def has_external_data_file(self) -> bool: ...
        @property
        def is_corrupt(self) -> bool: ...
        @property
        def is_dirty(self) -> bool: ...
        @property
        def len_header_extension_area(self) -> int: ...
        @property
        def len_l2_entry(self) -> int: ...
        @property
        def len_subcluster(self) -> int: ...
        @property
        def num_compressed_offset_bits(self) -> int: ...
        @property
        def num_guest_clusters(self) -> int: ...
        @property
        def num_l2_entries(self) -> int: ...
        @property
        def num_refcount_block_entries(self) -> int: ...
        @property
        def num_refcount_table_entries(self) -> int: ...
        @property
        def ofs_end_header_extensions(self) -> int: ...
        @property
        def ofs_header_extensions(self) -> int: ...
        @property
        def refcount_bits(self) -> int: ...
    class HeaderExtension:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        extension_type: Qcow2.HeaderExtensionType | int
        len_data: int
        data: Qcow2.BitmapsExtension | Qcow2.FeatureNameTable | Qcow2.FullDiskEncryptionHeaderPointer | Qcow2.StringExtension | bytes
        padding: bytes
    class HeaderExtensionArea:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        extensions: list[Qcow2.HeaderExtension]
    class HostCluster:
        def __init__(self, idx: int, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        idx: int
        @property
        def has_refcount_block(self) -> bool: ...
        @property
        def ofs_host_cluster(self) -> int: ...
        @property
        def refcount(self) -> int | None: ...
        @property
        def refcount_block_index(self) -> int: ...
        @property
        def refcount_table_entry(self) -> Qcow2.RefcountTableEntry | None: ...
        @property
        def refcount_table_index(self) -> int: ...
        @property
        def refcount_word(self) -> int | None: ...
    class IncompatibleFeatures:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        reserved_hi: int
        reserved_lo: int
        has_extended_l2: bool
        has_compression_type: bool
        has_external_data_file: bool
        is_corrupt: bool
        is_dirty: bool
    class L1Entry:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        is_copied: bool
        reserved_hi: int
        ofs_hi: int
        ofs_lo: int
        reserved_lo: int
        @property
        def is_allocated(self) -> bool: ...
        @property
        def l2_table(self) -> Qcow2.L2Table | None: ...
        @property
        def ofs_l2_table(self) -> int: ...
    class L1Table:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        entries: list[Qcow2.L1Entry]
    class L2Entry:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        is_copied: bool
        is_compressed: bool
        reserved_hi: int
        ofs_hi: int
        ofs_lo: int
        reserved_lo: int
        reads_as_zeros: bool
        compressed_hi: int
        compressed_lo: int
        zero_bitmap: int
        alloc_bitmap: int
        @property
        def cluster_type(self) -> Qcow2.ClusterType: ...
        @property
        def compressed_data(self) -> bytes | None: ...
        @property
        def data(self) -> bytes | None: ...
        @property
        def is_allocated(self) -> bool: ...
        @property
        def is_zero(self) -> bool: ...
        @property
        def len_compressed_data(self) -> int: ...
        @property
        def len_data_in_file(self) -> int: ...
        @property
        def num_additional_sectors(self) -> int: ...
        @property
        def ofs_compressed_data(self) -> int: ...
        @property
        def ofs_host_cluster(self) -> int: ...
        @property
        def status(self) -> Qcow2.ClusterStatus: ...
        @property
        def subclusters(self) -> list[Qcow2.Subcluster] | None: ...
    class L2Table:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        entries: list[Qcow2.L2Entry]
    class LuksHeader:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        magic: bytes
        version: int
        cipher_name: str
        cipher_mode: str
        hash_spec: str
        ofs_payload: int
        len_key: int
        mk_digest: bytes
        mk_digest_salt: bytes
        mk_digest_iterations: int
        uuid: str
        key_slots: list[Qcow2.LuksKeySlot]
    class LuksKeySlot:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        state: Qcow2.LuksKeySlotState | int
        iterations: int
        salt: bytes
        ofs_key_material: int
        num_stripes: int
    class RefcountBlock:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        refcounts: list[int]
        packed_refcounts: bytes
    class RefcountTable:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        entries: list[Qcow2.RefcountTableEntry]
    class RefcountTableEntry:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        ofs_hi: int
        ofs_lo: int
        reserved: int
        @property
        def ofs_refcount_block(self) -> int: ...
        @property
        def refcount_block(self) -> Qcow2.RefcountBlock | None: ...
    class Snapshot:
        def __init__(self, idx: int, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        idx: int
        ofs_l1_table: int
        num_l1_entries: int
        len_id_str: int
        len_name: int
        date_sec: int
        date_nsec: int
        vm_clock_nsec: int
        len_vm_state_32: int
        len_extra_data: int
        extra_data: Qcow2.SnapshotExtraData
        id_str: str
        name: str
        padding: bytes
        @property
        def l1_table(self) -> Qcow2.L1Table: ...
        @property
        def len_vm_state(self) -> int: ...
    class SnapshotExtraData:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        len_vm_state_64: int
        len_virtual_disk: int
        icount: int
        unknown: bytes
    class StringExtension:
        def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        value: str
    class Subcluster:
        def __init__(self, idx: int, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
        _io: Any
        _parent: Any
        _root: Qcow2
        idx: int
        @property
        def ofs_host(self) -> int: ...
        @property
        def status(self) -> Qcow2.SubclusterStatus: ...
    def __init__(self, _io: Any, _parent: Any = None, _root: Any = None) -> None: ...
    @classmethod
    def from_file(cls, filename: str) -> Qcow2: ...
    @classmethod
    def from_bytes(cls, buf: bytes) -> Qcow2: ...
    @classmethod
    def from_io(cls, io: Any) -> Qcow2: ...
    def close(self) -> None: ...
    def __enter__(self) -> Qcow2: ...
    def __exit__(self, *args: object) -> None: ...
    _io: Any
    _parent: Any
    _root: Qcow2
    header: Qcow2.Header
    header_extension_area: Qcow2.HeaderExtensionArea
    @property
    def backing_file_name(self) -> str | None: ...
    @property
    def l1_table(self) -> Qcow2.L1Table: ...
    @property
    def refcount_table(self) -> Qcow2.RefcountTable: ...
    @property
    def snapshots(self) -> list[Qcow2.Snapshot]: ...

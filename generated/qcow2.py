# This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild
# type: ignore

import kaitaistruct
from kaitaistruct import KaitaiStruct, KaitaiStream, BytesIO
from enum import IntEnum


if getattr(kaitaistruct, 'API_VERSION', (0, 9)) < (0, 11):
    raise Exception("Incompatible Kaitai Struct Python API: 0.11 or later is required, but you have %s" % (kaitaistruct.__version__))

class Qcow2(KaitaiStruct):
    """The qcow2 disk image format of QEMU, versions 2 and 3. The file is made of
    host clusters of 2^cluster_bits bytes; the guest disk is made of guest
    clusters of the same size. A two-level table maps guest clusters to host
    clusters: the L1 table (any number of contiguous clusters) points at L2
    tables (one cluster each), whose entries describe one guest cluster each:
    unallocated (read from the backing file, or zeros), all zeros, stored in a
    host cluster, or compressed. Another two-level table (the refcount table and
    its refcount blocks) counts the references to every host cluster. Internal
    snapshots keep their own L1 tables.
    
    What is parsed up front is small: the header (first cluster) and the
    header extensions that follow it. Everything else is a lazy instance, a
    positioned read from the image's stream that is only parsed when asked:
    `backing_file_name`, `l1_table` (and, under each L1 entry, its `l2_table`),
    `refcount_table` (and each `refcount_block`), `snapshots` (each with its
    own `l1_table`), `guest_clusters` and `host_clusters`. Opening a large
    image in the Web IDE or in a generated parser therefore reads the header
    only.
    
    Walking the guest disk: guest cluster number i (guest offset X, i = X /
    header.cluster_size) is `guest_clusters[i]`, a `guest_cluster` whose lazy
    `l1_entry` and `l2_entry` instances read exactly the two table entries the
    lookup of the spec's "Cluster mapping" section needs, no whole table. A
    generated parser can also build one directly from the root, e.g. in Python
    `Qcow2.GuestCluster(i, img._io, img, img)`. The `l2_entry` then gives
    `cluster_type`, `is_allocated`, `is_zero`, `is_compressed`,
    `ofs_host_cluster` (standard clusters), `ofs_compressed_data` and
    `len_compressed_data` (compressed clusters), and for images with extended
    L2 entries the per-subcluster `alloc_bitmap` and `zero_bitmap`.
    Likewise host cluster j (file offset j * header.cluster_size) is
    `host_clusters[j]`, whose `refcount` reads the one refcount of that
    cluster (`Qcow2.HostCluster(j, img._io, img, img)` in Python).
    
    Every rule the spec states with "must" that a parser can check is a
    `valid` key and fails the parse where it is broken; in the entries made
    of bit fields, each rule is a zero-length `*_rule` field after the last
    bit. The rules of a lazy structure fail when it is read. Encrypted guest
    data and compressed cluster payloads are not decoded: they are exposed as
    raw bytes.
    
    Where the spec is silent, this definition follows QEMU: the header
    extensions are read up to the backing file name, else to the end of the
    first cluster; the last snapshot table entry has no padding; clusters are
    classified (`cluster_type`) as QEMU classifies them.
    
    64-bit entries whose top bits are flags (L1, L2 and refcount table
    entries, feature bitmaps) are read as bit fields of at most 32 bits, and
    offsets are computed from the parts by arithmetic: a JavaScript parser (the
    Web IDE's) reads a u8 as a double and has 32-bit bitwise operators only, so
    this layout gives it exact values for every offset below 2^53 (8 PiB). The
    plain u8 fields of the header (sizes and offsets) are exact there up to
    2^53 too.
    
    .. seealso::
       QEMU docs/interop/qcow2.txt (the qcow2 image format specification)
    """

    class BitmapType(IntEnum):
        dirty_tracking = 1

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
    def __init__(self, _io, _parent=None, _root=None):
        super(Qcow2, self).__init__(_io)
        self._parent = _parent
        self._root = _root or self
        self._read()

    def _read(self):
        self.header = Qcow2.Header(self._io, self, self._root)
        self._raw_header_extension_area = self._io.read_bytes(self.header.len_header_extension_area)
        _io__raw_header_extension_area = KaitaiStream(BytesIO(self._raw_header_extension_area))
        self.header_extension_area = Qcow2.HeaderExtensionArea(_io__raw_header_extension_area, self, self._root)


    def _fetch_instances(self):
        pass
        self.header._fetch_instances()
        self.header_extension_area._fetch_instances()
        _ = self.backing_file_name
        if hasattr(self, '_m_backing_file_name'):
            pass

        _ = self.guest_clusters
        if hasattr(self, '_m_guest_clusters'):
            pass
            for i in range(len(self._m_guest_clusters)):
                pass
                self._m_guest_clusters[i]._fetch_instances()


        _ = self.host_clusters
        if hasattr(self, '_m_host_clusters'):
            pass
            for i in range(len(self._m_host_clusters)):
                pass
                self._m_host_clusters[i]._fetch_instances()


        _ = self.l1_table
        if hasattr(self, '_m_l1_table'):
            pass
            self._m_l1_table._fetch_instances()

        _ = self.refcount_table
        if hasattr(self, '_m_refcount_table'):
            pass
            self._m_refcount_table._fetch_instances()

        _ = self.snapshots
        if hasattr(self, '_m_snapshots'):
            pass
            for i in range(len(self._m_snapshots)):
                pass
                self._m_snapshots[i]._fetch_instances()



    class AutoclearFeatures(KaitaiStruct):
        """The auto-clear feature bitmask (u8), bit 63 first. A writer that does
        not know a set bit clears it before writing to the image.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Header ==", bytes 88-95: autoclear_features
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.AutoclearFeatures, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.reserved_hi = self._io.read_bits_int_be(32)
            self.reserved_lo = self._io.read_bits_int_be(30)
            self.has_raw_external_data = self._io.read_bits_int_be(1) != 0
            self.has_bitmaps = self._io.read_bits_int_be(1) != 0


        def _fetch_instances(self):
            pass


    class BitmapDirectory(KaitaiStruct):
        """The bitmap directory, num_bitmaps entries of variable length.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "=== Bitmap directory ==="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.BitmapDirectory, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.entries = []
            for i in range(self._parent.num_bitmaps):
                self.entries.append(Qcow2.BitmapDirectoryEntry(self._io, self, self._root))



        def _fetch_instances(self):
            pass
            for i in range(len(self.entries)):
                pass
                self.entries[i]._fetch_instances()



    class BitmapDirectoryEntry(KaitaiStruct):
        """One bitmap directory entry, padded to a multiple of 8 bytes.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "=== Bitmap directory ==="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.BitmapDirectoryEntry, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.ofs_bitmap_table = self._io.read_u8be()
            _ = self.ofs_bitmap_table
            if not _ % self._root.header.cluster_size == 0:
                raise kaitaistruct.ValidationExprError(self.ofs_bitmap_table, self._io, u"/types/bitmap_directory_entry/seq/0")
            self.num_bitmap_table_entries = self._io.read_u4be()
            self.flags = Qcow2.BitmapFlags(self._io, self, self._root)
            self.bitmap_type = KaitaiStream.resolve_enum(Qcow2.BitmapType, self._io.read_u1())
            self.granularity_bits = self._io.read_u1()
            if not self.granularity_bits <= 63:
                raise kaitaistruct.ValidationGreaterThanError(63, self.granularity_bits, self._io, u"/types/bitmap_directory_entry/seq/4")
            self.len_name = self._io.read_u2be()
            if not self.len_name >= 1:
                raise kaitaistruct.ValidationLessThanError(1, self.len_name, self._io, u"/types/bitmap_directory_entry/seq/5")
            self.len_extra_data = self._io.read_u4be()
            self.extra_data = self._io.read_bytes(self.len_extra_data)
            self.name = (self._io.read_bytes(self.len_name)).decode(u"UTF-8")
            self.padding = self._io.read_bytes((8 - ((24 + self.len_extra_data) + self.len_name) % 8) % 8)
            _ = self.padding
            if not  ((len(_) == 0) or (KaitaiStream.byte_array_max(_) == 0)) :
                raise kaitaistruct.ValidationExprError(self.padding, self._io, u"/types/bitmap_directory_entry/seq/9")


        def _fetch_instances(self):
            pass
            self.flags._fetch_instances()
            _ = self.bitmap_table
            if hasattr(self, '_m_bitmap_table'):
                pass
                for i in range(len(self._m_bitmap_table)):
                    pass
                    self._m_bitmap_table[i]._fetch_instances()



        @property
        def bitmap_table(self):
            """The bitmap table (lazy), mapping bitmap data to host clusters."""
            if hasattr(self, '_m_bitmap_table'):
                return self._m_bitmap_table

            io = self._root._io
            _pos = io.pos()
            io.seek(self.ofs_bitmap_table)
            self._m_bitmap_table = []
            for i in range(self.num_bitmap_table_entries):
                self._m_bitmap_table.append(Qcow2.BitmapTableEntry(io, self, self._root))

            io.seek(_pos)
            return getattr(self, '_m_bitmap_table', None)


    class BitmapFlags(KaitaiStruct):
        """The flags of a bitmap directory entry (u4), bit 31 first.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", bytes 12-15: flags
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.BitmapFlags, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.reserved = self._io.read_bits_int_be(29)
            self.is_extra_data_compatible = self._io.read_bits_int_be(1) != 0
            self.is_auto = self._io.read_bits_int_be(1) != 0
            self.is_in_use = self._io.read_bits_int_be(1) != 0
            self.reserved_rule = self._io.read_bytes(0)
            _ = self.reserved_rule
            if not self.reserved == 0:
                raise kaitaistruct.ValidationExprError(self.reserved_rule, self._io, u"/types/bitmap_flags/seq/4")


        def _fetch_instances(self):
            pass


    class BitmapTableEntry(KaitaiStruct):
        """One bitmap table entry (u8), bit 63 first: the host cluster of one
        cluster of bitmap data, or how an unallocated one reads.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "=== Bitmap table ==="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.BitmapTableEntry, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.reserved_hi = self._io.read_bits_int_be(8)
            self.ofs_hi = self._io.read_bits_int_be(24)
            self.ofs_lo = self._io.read_bits_int_be(23)
            self.reserved_lo = self._io.read_bits_int_be(8)
            self.is_all_ones = self._io.read_bits_int_be(1) != 0
            self.reserved_rule = self._io.read_bytes(0)
            _ = self.reserved_rule
            if not  ((self.reserved_hi == 0) and (self.reserved_lo == 0) and ( (((not (self.is_all_ones))) or ( ((self.ofs_hi == 0) and (self.ofs_lo == 0)) )) )) :
                raise kaitaistruct.ValidationExprError(self.reserved_rule, self._io, u"/types/bitmap_table_entry/seq/5")
            self.alignment_rule = self._io.read_bytes(0)
            _ = self.alignment_rule
            if not self.ofs_lo % (self._root.header.cluster_size // 512) == 0:
                raise kaitaistruct.ValidationExprError(self.alignment_rule, self._io, u"/types/bitmap_table_entry/seq/6")


        def _fetch_instances(self):
            pass

        @property
        def ofs_bitmap_data(self):
            """Offset in the image file of this cluster of bitmap data, 0 if unallocated."""
            if hasattr(self, '_m_ofs_bitmap_data'):
                return self._m_ofs_bitmap_data

            self._m_ofs_bitmap_data = self.ofs_hi * 4294967296 + self.ofs_lo * 512
            return getattr(self, '_m_ofs_bitmap_data', None)


    class BitmapsExtension(KaitaiStruct):
        """Where the bitmap directory is. The bitmaps are consistent only if the
        autoclear bitmaps bit is set.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Bitmaps extension =="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.BitmapsExtension, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.num_bitmaps = self._io.read_u4be()
            if not self.num_bitmaps >= 1:
                raise kaitaistruct.ValidationLessThanError(1, self.num_bitmaps, self._io, u"/types/bitmaps_extension/seq/0")
            self.reserved = self._io.read_u4be()
            if not self.reserved == 0:
                raise kaitaistruct.ValidationNotEqualError(0, self.reserved, self._io, u"/types/bitmaps_extension/seq/1")
            self.len_bitmap_directory = self._io.read_u8be()
            self.ofs_bitmap_directory = self._io.read_u8be()
            _ = self.ofs_bitmap_directory
            if not _ % self._root.header.cluster_size == 0:
                raise kaitaistruct.ValidationExprError(self.ofs_bitmap_directory, self._io, u"/types/bitmaps_extension/seq/3")


        def _fetch_instances(self):
            pass
            _ = self.bitmap_directory
            if hasattr(self, '_m_bitmap_directory'):
                pass
                self._m_bitmap_directory._fetch_instances()


        @property
        def bitmap_directory(self):
            """The bitmap directory (lazy)."""
            if hasattr(self, '_m_bitmap_directory'):
                return self._m_bitmap_directory

            io = self._root._io
            _pos = io.pos()
            io.seek(self.ofs_bitmap_directory)
            self._raw__m_bitmap_directory = io.read_bytes(self.len_bitmap_directory)
            _io__raw__m_bitmap_directory = KaitaiStream(BytesIO(self._raw__m_bitmap_directory))
            self._m_bitmap_directory = Qcow2.BitmapDirectory(_io__raw__m_bitmap_directory, self, self._root)
            io.seek(_pos)
            return getattr(self, '_m_bitmap_directory', None)


    class CompatibleFeatures(KaitaiStruct):
        """The compatible feature bitmask (u8), bit 63 first. Unknown bits may be
        safely ignored.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Header ==", bytes 80-87: compatible_features
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.CompatibleFeatures, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.reserved_hi = self._io.read_bits_int_be(32)
            self.reserved_lo = self._io.read_bits_int_be(31)
            self.has_lazy_refcounts = self._io.read_bits_int_be(1) != 0


        def _fetch_instances(self):
            pass


    class FeatureName(KaitaiStruct):
        """One feature name table entry.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Feature name table =="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.FeatureName, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.feature_type = KaitaiStream.resolve_enum(Qcow2.FeatureType, self._io.read_u1())
            self.bit_number = self._io.read_u1()
            if not self.bit_number <= 63:
                raise kaitaistruct.ValidationGreaterThanError(63, self.bit_number, self._io, u"/types/feature_name/seq/1")
            self.name = (KaitaiStream.bytes_terminate(self._io.read_bytes(46), 0, False)).decode(u"UTF-8")


        def _fetch_instances(self):
            pass


    class FeatureNameTable(KaitaiStruct):
        """Names for the features of the three feature bitmaps, so that a reader
        that does not know a feature can name it in an error message. The
        number of entries follows from the extension length.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Feature name table =="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.FeatureNameTable, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.entries = []
            i = 0
            while not self._io.is_eof():
                self.entries.append(Qcow2.FeatureName(self._io, self, self._root))
                i += 1



        def _fetch_instances(self):
            pass
            for i in range(len(self.entries)):
                pass
                self.entries[i]._fetch_instances()



    class FullDiskEncryptionHeaderPointer(KaitaiStruct):
        """Where the crypt method keeps its own header (present if, and only if,
        the crypt method needs one: LUKS). For LUKS it is a LUKS partition
        header and its key material.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Full disk encryption header pointer =="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.FullDiskEncryptionHeaderPointer, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.ofs_encryption_header = self._io.read_u8be()
            _ = self.ofs_encryption_header
            if not _ % self._root.header.cluster_size == 0:
                raise kaitaistruct.ValidationExprError(self.ofs_encryption_header, self._io, u"/types/full_disk_encryption_header_pointer/seq/0")
            self.len_encryption_header = self._io.read_u8be()


        def _fetch_instances(self):
            pass
            _ = self.encryption_header
            if hasattr(self, '_m_encryption_header'):
                pass


        @property
        def encryption_header(self):
            """The encryption header as raw bytes (lazy); for LUKS it starts with "LUKS\xba\xbe"."""
            if hasattr(self, '_m_encryption_header'):
                return self._m_encryption_header

            io = self._root._io
            _pos = io.pos()
            io.seek(self.ofs_encryption_header)
            self._m_encryption_header = io.read_bytes(self.len_encryption_header)
            io.seek(_pos)
            return getattr(self, '_m_encryption_header', None)


    class GuestCluster(KaitaiStruct):
        """One guest cluster and the lookup of the spec's "Cluster mapping"
        section: its L1 and L2 indexes, and (lazily) the one L1 entry and the
        one L2 entry that describe it, read in place in the active tables.
        Reads nothing from the stream until an instance is asked for.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Cluster mapping =="
        """
        def __init__(self, idx, _io, _parent=None, _root=None):
            super(Qcow2.GuestCluster, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self.idx = idx
            self._read()

        def _read(self):
            pass


        def _fetch_instances(self):
            pass
            _ = self.l1_entry
            if hasattr(self, '_m_l1_entry'):
                pass
                self._m_l1_entry._fetch_instances()

            _ = self.l2_entry
            if hasattr(self, '_m_l2_entry'):
                pass
                self._m_l2_entry._fetch_instances()


        @property
        def l1_entry(self):
            """The active L1 entry that covers this cluster; absent when the L1
            table is too short to reach it (the cluster is unallocated).
            """
            if hasattr(self, '_m_l1_entry'):
                return self._m_l1_entry

            if self.l1_index < self._root.header.num_l1_entries:
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self._root.header.ofs_l1_table + self.l1_index * 8)
                self._m_l1_entry = Qcow2.L1Entry(io, self, self._root)
                io.seek(_pos)

            return getattr(self, '_m_l1_entry', None)

        @property
        def l1_index(self):
            """Index of the L1 table entry that covers this cluster."""
            if hasattr(self, '_m_l1_index'):
                return self._m_l1_index

            self._m_l1_index = self.idx // self._root.header.num_l2_entries
            return getattr(self, '_m_l1_index', None)

        @property
        def l2_entry(self):
            """The L2 entry that describes this cluster; absent when its L1 entry
            has no L2 table (the cluster is unallocated).
            """
            if hasattr(self, '_m_l2_entry'):
                return self._m_l2_entry

            if  ((self.l1_index < self._root.header.num_l1_entries) and (self.l1_entry.is_allocated)) :
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self.l1_entry.ofs_l2_table + self.l2_index * self._root.header.len_l2_entry)
                self._m_l2_entry = Qcow2.L2Entry(io, self, self._root)
                io.seek(_pos)

            return getattr(self, '_m_l2_entry', None)

        @property
        def l2_index(self):
            """Index of this cluster's entry in its L2 table."""
            if hasattr(self, '_m_l2_index'):
                return self._m_l2_index

            self._m_l2_index = self.idx % self._root.header.num_l2_entries
            return getattr(self, '_m_l2_index', None)

        @property
        def ofs_guest(self):
            """Guest offset of the first byte of the cluster."""
            if hasattr(self, '_m_ofs_guest'):
                return self._m_ofs_guest

            self._m_ofs_guest = self.idx * self._root.header.cluster_size
            return getattr(self, '_m_ofs_guest', None)


    class Header(KaitaiStruct):
        """The qcow2 header. Versions 2 and 3 share the first 72 bytes; version 3
        adds the feature bitmaps, refcount_order and header_length, then
        optional additional fields up to header_length (compression_type in
        this version of the spec).
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Header =="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.Header, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.magic = self._io.read_bytes(4)
            if not self.magic == b"\x51\x46\x49\xFB":
                raise kaitaistruct.ValidationNotEqualError(b"\x51\x46\x49\xFB", self.magic, self._io, u"/types/header/seq/0")
            self.version = self._io.read_u4be()
            if not  ((self.version == 2) or (self.version == 3)) :
                raise kaitaistruct.ValidationNotAnyOfError(self.version, self._io, u"/types/header/seq/1")
            self.ofs_backing_file = self._io.read_u8be()
            self.len_backing_file = self._io.read_u4be()
            _ = self.len_backing_file
            if not  ((self.ofs_backing_file == 0) or (_ <= 1023)) :
                raise kaitaistruct.ValidationExprError(self.len_backing_file, self._io, u"/types/header/seq/3")
            self.cluster_bits = self._io.read_u4be()
            if not self.cluster_bits >= 9:
                raise kaitaistruct.ValidationLessThanError(9, self.cluster_bits, self._io, u"/types/header/seq/4")
            if not self.cluster_bits <= 21:
                raise kaitaistruct.ValidationGreaterThanError(21, self.cluster_bits, self._io, u"/types/header/seq/4")
            self.len_virtual_disk = self._io.read_u8be()
            self.crypt_method = KaitaiStream.resolve_enum(Qcow2.CryptMethod, self._io.read_u4be())
            self.num_l1_entries = self._io.read_u4be()
            self.ofs_l1_table = self._io.read_u8be()
            _ = self.ofs_l1_table
            if not _ % self.cluster_size == 0:
                raise kaitaistruct.ValidationExprError(self.ofs_l1_table, self._io, u"/types/header/seq/8")
            self.ofs_refcount_table = self._io.read_u8be()
            _ = self.ofs_refcount_table
            if not _ % self.cluster_size == 0:
                raise kaitaistruct.ValidationExprError(self.ofs_refcount_table, self._io, u"/types/header/seq/9")
            self.num_refcount_table_clusters = self._io.read_u4be()
            self.num_snapshots = self._io.read_u4be()
            self.ofs_snapshots = self._io.read_u8be()
            _ = self.ofs_snapshots
            if not _ % self.cluster_size == 0:
                raise kaitaistruct.ValidationExprError(self.ofs_snapshots, self._io, u"/types/header/seq/12")
            if self.version >= 3:
                pass
                self.incompatible_features = Qcow2.IncompatibleFeatures(self._io, self, self._root)

            if self.version >= 3:
                pass
                self.compatible_features = Qcow2.CompatibleFeatures(self._io, self, self._root)

            if self.version >= 3:
                pass
                self.autoclear_features = Qcow2.AutoclearFeatures(self._io, self, self._root)

            if self.version >= 3:
                pass
                self.refcount_order = self._io.read_u4be()
                if not self.refcount_order <= 6:
                    raise kaitaistruct.ValidationGreaterThanError(6, self.refcount_order, self._io, u"/types/header/seq/16")

            if self.version >= 3:
                pass
                self.len_header = self._io.read_u4be()
                _ = self.len_header
                if not  ((_ >= 104) and (_ % 8 == 0) and (_ <= self.cluster_size) and ( (((not (self.incompatible_features.has_compression_type))) or (_ > 104)) )) :
                    raise kaitaistruct.ValidationExprError(self.len_header, self._io, u"/types/header/seq/17")

            if  ((self.version >= 3) and (self.len_header > 104)) :
                pass
                self.compression_type = KaitaiStream.resolve_enum(Qcow2.CompressionType, self._io.read_u1())
                _ = self.compression_type
                if not (_ != Qcow2.CompressionType.zlib if self.incompatible_features.has_compression_type else _ == Qcow2.CompressionType.zlib):
                    raise kaitaistruct.ValidationExprError(self.compression_type, self._io, u"/types/header/seq/18")

            if  ((self.version >= 3) and (self.len_header > 105)) :
                pass
                self.padding = self._io.read_bytes(self.len_header - 105)



        def _fetch_instances(self):
            pass
            if self.version >= 3:
                pass
                self.incompatible_features._fetch_instances()

            if self.version >= 3:
                pass
                self.compatible_features._fetch_instances()

            if self.version >= 3:
                pass
                self.autoclear_features._fetch_instances()

            if self.version >= 3:
                pass

            if self.version >= 3:
                pass

            if  ((self.version >= 3) and (self.len_header > 104)) :
                pass

            if  ((self.version >= 3) and (self.len_header > 105)) :
                pass


        @property
        def cluster_size(self):
            """Size of a cluster in bytes (512 B to 2 MiB)."""
            if hasattr(self, '_m_cluster_size'):
                return self._m_cluster_size

            self._m_cluster_size = 1 << self.cluster_bits
            return getattr(self, '_m_cluster_size', None)

        @property
        def compression(self):
            """The compression method of compressed clusters: compression_type
            when the header has the field, else zlib (deflate), which is what
            an absent field means.
            """
            if hasattr(self, '_m_compression'):
                return self._m_compression

            self._m_compression = KaitaiStream.resolve_enum(Qcow2.CompressionType, (int(self.compression_type) if  ((self.version >= 3) and (self.len_header > 104))  else 0))
            return getattr(self, '_m_compression', None)

        @property
        def has_extended_l2(self):
            """True when L2 entries are 128-bit extended entries with subclusters."""
            if hasattr(self, '_m_has_extended_l2'):
                return self._m_has_extended_l2

            self._m_has_extended_l2 =  ((self.version >= 3) and (self.incompatible_features.has_extended_l2)) 
            return getattr(self, '_m_has_extended_l2', None)

        @property
        def has_external_data_file(self):
            """True when guest clusters are stored in an external data file (its
            name may be in a header extension); host offsets in L2 entries are
            then offsets in that file.
            """
            if hasattr(self, '_m_has_external_data_file'):
                return self._m_has_external_data_file

            self._m_has_external_data_file =  ((self.version >= 3) and (self.incompatible_features.has_external_data_file)) 
            return getattr(self, '_m_has_external_data_file', None)

        @property
        def is_corrupt(self):
            """True when the corrupt bit is set."""
            if hasattr(self, '_m_is_corrupt'):
                return self._m_is_corrupt

            self._m_is_corrupt =  ((self.version >= 3) and (self.incompatible_features.is_corrupt)) 
            return getattr(self, '_m_is_corrupt', None)

        @property
        def is_dirty(self):
            """True when the dirty bit is set (refcounts may be inconsistent)."""
            if hasattr(self, '_m_is_dirty'):
                return self._m_is_dirty

            self._m_is_dirty =  ((self.version >= 3) and (self.incompatible_features.is_dirty)) 
            return getattr(self, '_m_is_dirty', None)

        @property
        def len_header_extension_area(self):
            """Size of the header extension area (0 if the backing file name overlaps the header)."""
            if hasattr(self, '_m_len_header_extension_area'):
                return self._m_len_header_extension_area

            self._m_len_header_extension_area = (self.ofs_end_header_extensions - self.ofs_header_extensions if self.ofs_end_header_extensions > self.ofs_header_extensions else 0)
            return getattr(self, '_m_len_header_extension_area', None)

        @property
        def len_l2_entry(self):
            """Size of an L2 table entry in bytes (16 with extended L2 entries)."""
            if hasattr(self, '_m_len_l2_entry'):
                return self._m_len_l2_entry

            self._m_len_l2_entry = (16 if self.has_extended_l2 else 8)
            return getattr(self, '_m_len_l2_entry', None)

        @property
        def len_subcluster(self):
            """Size of a subcluster: a 32nd of a cluster with extended L2 entries;
            without them the unit of allocation is the cluster itself.
            """
            if hasattr(self, '_m_len_subcluster'):
                return self._m_len_subcluster

            self._m_len_subcluster = (self.cluster_size // 32 if self.has_extended_l2 else self.cluster_size)
            return getattr(self, '_m_len_subcluster', None)

        @property
        def num_compressed_offset_bits(self):
            """x = 62 - (cluster_bits - 8): the width of the host offset field of
            a compressed cluster descriptor; bits x to 61 hold the additional
            sector count.
            """
            if hasattr(self, '_m_num_compressed_offset_bits'):
                return self._m_num_compressed_offset_bits

            self._m_num_compressed_offset_bits = 62 - (self.cluster_bits - 8)
            return getattr(self, '_m_num_compressed_offset_bits', None)

        @property
        def num_guest_clusters(self):
            """Number of guest clusters of the virtual disk (the last may be partial)."""
            if hasattr(self, '_m_num_guest_clusters'):
                return self._m_num_guest_clusters

            self._m_num_guest_clusters = ((self.len_virtual_disk + self.cluster_size) - 1) // self.cluster_size
            return getattr(self, '_m_num_guest_clusters', None)

        @property
        def num_l2_entries(self):
            """Number of entries in one L2 table (one cluster)."""
            if hasattr(self, '_m_num_l2_entries'):
                return self._m_num_l2_entries

            self._m_num_l2_entries = self.cluster_size // self.len_l2_entry
            return getattr(self, '_m_num_l2_entries', None)

        @property
        def num_refcount_block_entries(self):
            """Number of refcounts in one refcount block (one cluster)."""
            if hasattr(self, '_m_num_refcount_block_entries'):
                return self._m_num_refcount_block_entries

            self._m_num_refcount_block_entries = (self.cluster_size * 8) // self.refcount_bits
            return getattr(self, '_m_num_refcount_block_entries', None)

        @property
        def num_refcount_table_entries(self):
            """Number of 8-byte entries in the refcount table."""
            if hasattr(self, '_m_num_refcount_table_entries'):
                return self._m_num_refcount_table_entries

            self._m_num_refcount_table_entries = self.num_refcount_table_clusters * (self.cluster_size // 8)
            return getattr(self, '_m_num_refcount_table_entries', None)

        @property
        def ofs_end_header_extensions(self):
            """Where the header extension area ends: at the backing file name when
            there is one (it follows the extensions), else at the end of the
            first cluster.
            """
            if hasattr(self, '_m_ofs_end_header_extensions'):
                return self._m_ofs_end_header_extensions

            self._m_ofs_end_header_extensions = (self.ofs_backing_file if self.ofs_backing_file != 0 else self.cluster_size)
            return getattr(self, '_m_ofs_end_header_extensions', None)

        @property
        def ofs_header_extensions(self):
            """Offset of the first header extension: header_length in version 3,
            72 (the header's fixed length) in version 2.
            """
            if hasattr(self, '_m_ofs_header_extensions'):
                return self._m_ofs_header_extensions

            self._m_ofs_header_extensions = (self.len_header if self.version >= 3 else 72)
            return getattr(self, '_m_ofs_header_extensions', None)

        @property
        def refcount_bits(self):
            """Width of a refcount block entry in bits (16 in version 2)."""
            if hasattr(self, '_m_refcount_bits'):
                return self._m_refcount_bits

            self._m_refcount_bits = 1 << (self.refcount_order if self.version >= 3 else 4)
            return getattr(self, '_m_refcount_bits', None)


    class HeaderExtension(KaitaiStruct):
        """One header extension: its type, the length of its data, the data, and
        padding up to the next multiple of 8 bytes.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "=== Header extensions ==="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.HeaderExtension, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.extension_type = KaitaiStream.resolve_enum(Qcow2.HeaderExtensionType, self._io.read_u4be())
            self.len_data = self._io.read_u4be()
            _on = self.extension_type
            if _on == Qcow2.HeaderExtensionType.backing_file_format:
                pass
                self._raw_data = self._io.read_bytes(self.len_data)
                _io__raw_data = KaitaiStream(BytesIO(self._raw_data))
                self.data = Qcow2.StringExtension(_io__raw_data, self, self._root)
            elif _on == Qcow2.HeaderExtensionType.bitmaps:
                pass
                self._raw_data = self._io.read_bytes(self.len_data)
                _io__raw_data = KaitaiStream(BytesIO(self._raw_data))
                self.data = Qcow2.BitmapsExtension(_io__raw_data, self, self._root)
            elif _on == Qcow2.HeaderExtensionType.external_data_file:
                pass
                self._raw_data = self._io.read_bytes(self.len_data)
                _io__raw_data = KaitaiStream(BytesIO(self._raw_data))
                self.data = Qcow2.StringExtension(_io__raw_data, self, self._root)
            elif _on == Qcow2.HeaderExtensionType.feature_name_table:
                pass
                self._raw_data = self._io.read_bytes(self.len_data)
                _io__raw_data = KaitaiStream(BytesIO(self._raw_data))
                self.data = Qcow2.FeatureNameTable(_io__raw_data, self, self._root)
            elif _on == Qcow2.HeaderExtensionType.full_disk_encryption:
                pass
                self._raw_data = self._io.read_bytes(self.len_data)
                _io__raw_data = KaitaiStream(BytesIO(self._raw_data))
                self.data = Qcow2.FullDiskEncryptionHeaderPointer(_io__raw_data, self, self._root)
            else:
                pass
                self.data = self._io.read_bytes(self.len_data)
            self.padding = self._io.read_bytes((8 - self.len_data % 8) % 8)


        def _fetch_instances(self):
            pass
            _on = self.extension_type
            if _on == Qcow2.HeaderExtensionType.backing_file_format:
                pass
                self.data._fetch_instances()
            elif _on == Qcow2.HeaderExtensionType.bitmaps:
                pass
                self.data._fetch_instances()
            elif _on == Qcow2.HeaderExtensionType.external_data_file:
                pass
                self.data._fetch_instances()
            elif _on == Qcow2.HeaderExtensionType.feature_name_table:
                pass
                self.data._fetch_instances()
            elif _on == Qcow2.HeaderExtensionType.full_disk_encryption:
                pass
                self.data._fetch_instances()
            else:
                pass


    class HeaderExtensionArea(KaitaiStruct):
        """The header extensions, one after the other, up to the end marker (type
        0) or the end of the area. Extensions of unknown types are kept as raw
        bytes.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "=== Header extensions ==="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.HeaderExtensionArea, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            if (not (self._io.is_eof())):
                pass
                self.extensions = []
                i = 0
                while True:
                    _ = Qcow2.HeaderExtension(self._io, self, self._root)
                    self.extensions.append(_)
                    if  ((_.extension_type == Qcow2.HeaderExtensionType.end) or (self._io.is_eof())) :
                        break
                    i += 1



        def _fetch_instances(self):
            pass
            if (not (self._io.is_eof())):
                pass
                for i in range(len(self.extensions)):
                    pass
                    self.extensions[i]._fetch_instances()




    class HostCluster(KaitaiStruct):
        """One host cluster and the refcount lookup of the spec's "Host cluster
        management" section: its refcount table and refcount block indexes,
        and (lazily) the one refcount table entry and the one refcount that
        concern it, read in place.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Host cluster management =="
        """
        def __init__(self, idx, _io, _parent=None, _root=None):
            super(Qcow2.HostCluster, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self.idx = idx
            self._read()

        def _read(self):
            pass


        def _fetch_instances(self):
            pass
            _ = self.refcount_table_entry
            if hasattr(self, '_m_refcount_table_entry'):
                pass
                self._m_refcount_table_entry._fetch_instances()

            _ = self.refcount_word
            if hasattr(self, '_m_refcount_word'):
                pass
                _on = self._root.header.refcount_bits
                if _on == 1:
                    pass
                elif _on == 16:
                    pass
                elif _on == 2:
                    pass
                elif _on == 32:
                    pass
                elif _on == 4:
                    pass
                elif _on == 64:
                    pass
                elif _on == 8:
                    pass


        @property
        def has_refcount_block(self):
            """True when a refcount block holds this cluster's refcount."""
            if hasattr(self, '_m_has_refcount_block'):
                return self._m_has_refcount_block

            self._m_has_refcount_block =  ((self.refcount_table_index < self._root.header.num_refcount_table_entries) and (self.refcount_table_entry.ofs_refcount_block != 0)) 
            return getattr(self, '_m_has_refcount_block', None)

        @property
        def ofs_host_cluster(self):
            """Offset of the cluster in the image file."""
            if hasattr(self, '_m_ofs_host_cluster'):
                return self._m_ofs_host_cluster

            self._m_ofs_host_cluster = self.idx * self._root.header.cluster_size
            return getattr(self, '_m_ofs_host_cluster', None)

        @property
        def refcount(self):
            """The cluster's refcount: 0 when free (or when no refcount block
            covers it), 1 when used once, 2 or more when shared (a write must
            copy it). Sub-byte refcounts are taken from their byte, bit 0 being
            its least significant bit.
            """
            if hasattr(self, '_m_refcount'):
                return self._m_refcount

            self._m_refcount = (0 if (not (self.has_refcount_block)) else (self.refcount_word if self._root.header.refcount_bits >= 8 else (self.refcount_word >> (self.refcount_block_index * self._root.header.refcount_bits) % 8) % (1 << self._root.header.refcount_bits)))
            return getattr(self, '_m_refcount', None)

        @property
        def refcount_block_index(self):
            """Index of this cluster's refcount in its refcount block."""
            if hasattr(self, '_m_refcount_block_index'):
                return self._m_refcount_block_index

            self._m_refcount_block_index = self.idx % self._root.header.num_refcount_block_entries
            return getattr(self, '_m_refcount_block_index', None)

        @property
        def refcount_table_entry(self):
            """The refcount table entry that covers this cluster; absent when the
            refcount table is too short to reach it.
            """
            if hasattr(self, '_m_refcount_table_entry'):
                return self._m_refcount_table_entry

            if self.refcount_table_index < self._root.header.num_refcount_table_entries:
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self._root.header.ofs_refcount_table + self.refcount_table_index * 8)
                self._m_refcount_table_entry = Qcow2.RefcountTableEntry(io, self, self._root)
                io.seek(_pos)

            return getattr(self, '_m_refcount_table_entry', None)

        @property
        def refcount_table_index(self):
            """Index of the refcount table entry that covers this cluster."""
            if hasattr(self, '_m_refcount_table_index'):
                return self._m_refcount_table_index

            self._m_refcount_table_index = self.idx // self._root.header.num_refcount_block_entries
            return getattr(self, '_m_refcount_table_index', None)

        @property
        def refcount_word(self):
            """The refcount block entry as read: the refcount itself for widths of
            8 bits and more, else the byte that holds it.
            """
            if hasattr(self, '_m_refcount_word'):
                return self._m_refcount_word

            if self.has_refcount_block:
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self.refcount_table_entry.ofs_refcount_block + (self.refcount_block_index * self._root.header.refcount_bits) // 8)
                _on = self._root.header.refcount_bits
                if _on == 1:
                    pass
                    self._m_refcount_word = io.read_u1()
                elif _on == 16:
                    pass
                    self._m_refcount_word = io.read_u2be()
                elif _on == 2:
                    pass
                    self._m_refcount_word = io.read_u1()
                elif _on == 32:
                    pass
                    self._m_refcount_word = io.read_u4be()
                elif _on == 4:
                    pass
                    self._m_refcount_word = io.read_u1()
                elif _on == 64:
                    pass
                    self._m_refcount_word = io.read_u8be()
                elif _on == 8:
                    pass
                    self._m_refcount_word = io.read_u1()
                io.seek(_pos)

            return getattr(self, '_m_refcount_word', None)


    class IncompatibleFeatures(KaitaiStruct):
        """The incompatible feature bitmask (u8), bit 63 first. Bits 5 to 63 are
        reserved; an implementation must fail to open an image in which an
        unknown bit is set, since it would misread the image, so the parse
        fails on a set reserved bit.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Header ==", bytes 72-79: incompatible_features
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.IncompatibleFeatures, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.reserved_hi = self._io.read_bits_int_be(32)
            self.reserved_lo = self._io.read_bits_int_be(27)
            self.has_extended_l2 = self._io.read_bits_int_be(1) != 0
            self.has_compression_type = self._io.read_bits_int_be(1) != 0
            self.has_external_data_file = self._io.read_bits_int_be(1) != 0
            self.is_corrupt = self._io.read_bits_int_be(1) != 0
            self.is_dirty = self._io.read_bits_int_be(1) != 0
            self.reserved_rule = self._io.read_bytes(0)
            _ = self.reserved_rule
            if not  ((self.reserved_hi == 0) and (self.reserved_lo == 0)) :
                raise kaitaistruct.ValidationExprError(self.reserved_rule, self._io, u"/types/incompatible_features/seq/7")
            self.extended_l2_rule = self._io.read_bytes(0)
            _ = self.extended_l2_rule
            if not  (((not (self.has_extended_l2))) or (self._parent.cluster_bits >= 14)) :
                raise kaitaistruct.ValidationExprError(self.extended_l2_rule, self._io, u"/types/incompatible_features/seq/8")


        def _fetch_instances(self):
            pass


    class L1Entry(KaitaiStruct):
        """One L1 table entry (u8), bit 63 first.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L1 table entry
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.L1Entry, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.is_copied = self._io.read_bits_int_be(1) != 0
            self.reserved_hi = self._io.read_bits_int_be(7)
            self.ofs_hi = self._io.read_bits_int_be(24)
            self.ofs_lo = self._io.read_bits_int_be(23)
            self.reserved_lo = self._io.read_bits_int_be(9)
            self.alignment_rule = self._io.read_bytes(0)
            _ = self.alignment_rule
            if not self.ofs_lo % (self._root.header.cluster_size // 512) == 0:
                raise kaitaistruct.ValidationExprError(self.alignment_rule, self._io, u"/types/l1_entry/seq/5")


        def _fetch_instances(self):
            pass
            _ = self.l2_table
            if hasattr(self, '_m_l2_table'):
                pass
                self._m_l2_table._fetch_instances()


        @property
        def is_allocated(self):
            """True when the entry points at an L2 table."""
            if hasattr(self, '_m_is_allocated'):
                return self._m_is_allocated

            self._m_is_allocated = self.ofs_l2_table != 0
            return getattr(self, '_m_is_allocated', None)

        @property
        def l2_table(self):
            """The L2 table this entry points at (lazy; absent when unallocated)."""
            if hasattr(self, '_m_l2_table'):
                return self._m_l2_table

            if self.is_allocated:
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self.ofs_l2_table)
                self._raw__m_l2_table = io.read_bytes(self._root.header.cluster_size)
                _io__raw__m_l2_table = KaitaiStream(BytesIO(self._raw__m_l2_table))
                self._m_l2_table = Qcow2.L2Table(_io__raw__m_l2_table, self, self._root)
                io.seek(_pos)

            return getattr(self, '_m_l2_table', None)

        @property
        def ofs_l2_table(self):
            """Offset in the image file of the L2 table; 0 if the L2 table, and
            every cluster it would describe, is unallocated.
            """
            if hasattr(self, '_m_ofs_l2_table'):
                return self._m_ofs_l2_table

            self._m_ofs_l2_table = self.ofs_hi * 4294967296 + self.ofs_lo * 512
            return getattr(self, '_m_ofs_l2_table', None)


    class L1Table(KaitaiStruct):
        """An L1 table: the active one (header.ofs_l1_table) or a snapshot's.
        Contiguous in the image file.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Cluster mapping =="
        """
        def __init__(self, num_entries, _io, _parent=None, _root=None):
            super(Qcow2.L1Table, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self.num_entries = num_entries
            self._read()

        def _read(self):
            self.entries = []
            for i in range(self.num_entries):
                self.entries.append(Qcow2.L1Entry(self._io, self, self._root))



        def _fetch_instances(self):
            pass
            for i in range(len(self.entries)):
                pass
                self.entries[i]._fetch_instances()



    class L2Entry(KaitaiStruct):
        """One L2 table entry: 64 bits, bit 63 first, plus (with extended L2
        entries) a 64-bit subcluster allocation bitmap. Bits 0-61 are a cluster
        descriptor whose layout depends on bit 62: a standard cluster
        descriptor (host cluster offset, "reads as zeros" bit) or a compressed
        cluster descriptor (host offset and additional sector count, split at
        bit x = 62 - (cluster_bits - 8)). Only the fields of the layout in use
        are read; the instances give the meaning.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L2 table entry
        
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Extended L2 Entries =="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.L2Entry, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.is_copied = self._io.read_bits_int_be(1) != 0
            self.is_compressed = self._io.read_bits_int_be(1) != 0
            if (not (self.is_compressed)):
                pass
                self.reserved_hi = self._io.read_bits_int_be(6)

            if (not (self.is_compressed)):
                pass
                self.ofs_hi = self._io.read_bits_int_be(24)

            if (not (self.is_compressed)):
                pass
                self.ofs_lo = self._io.read_bits_int_be(23)

            if (not (self.is_compressed)):
                pass
                self.reserved_lo = self._io.read_bits_int_be(8)

            if (not (self.is_compressed)):
                pass
                self.reads_as_zeros = self._io.read_bits_int_be(1) != 0

            if self.is_compressed:
                pass
                self.compressed_hi = self._io.read_bits_int_be(30)

            if self.is_compressed:
                pass
                self.compressed_lo = self._io.read_bits_int_be(32)

            if (not (self.is_compressed)):
                pass
                self.alignment_rule = self._io.read_bytes(0)
                _ = self.alignment_rule
                if not self.ofs_lo % (self._root.header.cluster_size // 512) == 0:
                    raise kaitaistruct.ValidationExprError(self.alignment_rule, self._io, u"/types/l2_entry/seq/9")

            if self.is_compressed:
                pass
                self.compressed_offset_rule = self._io.read_bytes(0)
                _ = self.compressed_offset_rule
                if not self.compressed_hi % (1 << self._root.header.num_compressed_offset_bits - 32) < 16777216:
                    raise kaitaistruct.ValidationExprError(self.compressed_offset_rule, self._io, u"/types/l2_entry/seq/10")

            if self._root.header.has_extended_l2:
                pass
                self.zero_bitmap = self._io.read_u4be()

            if self._root.header.has_extended_l2:
                pass
                self.alloc_bitmap = self._io.read_u4be()
                _ = self.alloc_bitmap
                if not  ((_ & self.zero_bitmap == 0) and ( ((_ == 0) or (self.ofs_host_cluster != 0) or (self.is_copied)) )) :
                    raise kaitaistruct.ValidationExprError(self.alloc_bitmap, self._io, u"/types/l2_entry/seq/12")



        def _fetch_instances(self):
            pass
            if (not (self.is_compressed)):
                pass

            if (not (self.is_compressed)):
                pass

            if (not (self.is_compressed)):
                pass

            if (not (self.is_compressed)):
                pass

            if (not (self.is_compressed)):
                pass

            if self.is_compressed:
                pass

            if self.is_compressed:
                pass

            if (not (self.is_compressed)):
                pass

            if self.is_compressed:
                pass

            if self._root.header.has_extended_l2:
                pass

            if self._root.header.has_extended_l2:
                pass

            _ = self.compressed_data
            if hasattr(self, '_m_compressed_data'):
                pass

            _ = self.data
            if hasattr(self, '_m_data'):
                pass


        @property
        def cluster_type(self):
            """What the entry describes, classified as QEMU does (see the enum).
            With extended L2 entries, the subcluster bitmaps refine a
            `normal` or `unallocated` cluster.
            """
            if hasattr(self, '_m_cluster_type'):
                return self._m_cluster_type

            self._m_cluster_type = KaitaiStream.resolve_enum(Qcow2.ClusterType, (4 if self.is_compressed else ((2 if self.ofs_host_cluster != 0 else 1) if  (((not (self._root.header.has_extended_l2))) and (self.reads_as_zeros))  else (3 if  ((self.ofs_host_cluster != 0) or ( ((self._root.header.has_external_data_file) and (self.is_copied)) ))  else 0))))
            return getattr(self, '_m_cluster_type', None)

        @property
        def compressed_data(self):
            """Compressed clusters: the compressed bytes as stored (lazy, not
            decoded; raw deflate or zstd, see header.compression).
            """
            if hasattr(self, '_m_compressed_data'):
                return self._m_compressed_data

            if self.is_compressed:
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self.ofs_compressed_data)
                self._m_compressed_data = io.read_bytes(self.len_compressed_data)
                io.seek(_pos)

            return getattr(self, '_m_compressed_data', None)

        @property
        def data(self):
            """Standard clusters stored in this file: the host cluster's bytes
            (lazy; encrypted if the image is). With extended L2 entries only
            the allocated subclusters hold guest data.
            """
            if hasattr(self, '_m_data'):
                return self._m_data

            if  ((self.cluster_type == Qcow2.ClusterType.normal) and ((not (self._root.header.has_external_data_file)))) :
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self.ofs_host_cluster)
                self._m_data = io.read_bytes(self._root.header.cluster_size)
                io.seek(_pos)

            return getattr(self, '_m_data', None)

        @property
        def is_allocated(self):
            """True when the entry has host storage: a compressed cluster, or a
            standard one with a host cluster offset (offset 0 with bit 63 set
            is host offset 0 in an external data file). False means the
            cluster reads from the backing file, or as zeros if there is none
            or `is_zero` is set.
            """
            if hasattr(self, '_m_is_allocated'):
                return self._m_is_allocated

            self._m_is_allocated =  ((self.is_compressed) or (self.ofs_host_cluster != 0) or (self.is_copied)) 
            return getattr(self, '_m_is_allocated', None)

        @property
        def is_zero(self):
            """True when the whole guest cluster reads as zeros by this entry: the
            standard descriptor's bit 0, or with extended L2 entries every
            subcluster's "reads as zeros" bit.
            """
            if hasattr(self, '_m_is_zero'):
                return self._m_is_zero

            self._m_is_zero =  (((not (self.is_compressed))) and ((self.zero_bitmap == 4294967295 if self._root.header.has_extended_l2 else self.reads_as_zeros))) 
            return getattr(self, '_m_is_zero', None)

        @property
        def len_compressed_data(self):
            """Compressed clusters: number of bytes from `ofs_compressed_data` to
            the end of its last sector, which hold the compressed data
            (decompression stops when a cluster has been produced, so the tail
            may belong to the next compressed cluster).
            """
            if hasattr(self, '_m_len_compressed_data'):
                return self._m_len_compressed_data

            self._m_len_compressed_data = ((self.num_additional_sectors + 1) * 512 - self.ofs_compressed_data % 512 if self.is_compressed else 0)
            return getattr(self, '_m_len_compressed_data', None)

        @property
        def num_additional_sectors(self):
            """Compressed clusters: number of 512-byte sectors the compressed data
            uses beyond the sector that holds its first byte (bits x to 61).
            """
            if hasattr(self, '_m_num_additional_sectors'):
                return self._m_num_additional_sectors

            self._m_num_additional_sectors = (self.compressed_hi // (1 << self._root.header.num_compressed_offset_bits - 32) if self.is_compressed else 0)
            return getattr(self, '_m_num_additional_sectors', None)

        @property
        def ofs_compressed_data(self):
            """Compressed clusters: offset in the image file of the compressed
            data (bits 0 to x-1), usually not aligned to a cluster or sector.
            """
            if hasattr(self, '_m_ofs_compressed_data'):
                return self._m_ofs_compressed_data

            self._m_ofs_compressed_data = ((self.compressed_hi % (1 << self._root.header.num_compressed_offset_bits - 32)) * 4294967296 + self.compressed_lo if self.is_compressed else 0)
            return getattr(self, '_m_ofs_compressed_data', None)

        @property
        def ofs_host_cluster(self):
            """Standard clusters: offset of the host cluster (in the external data
            file if the image has one); 0 when there is none. Always 0 for a
            compressed cluster (see `ofs_compressed_data`).
            """
            if hasattr(self, '_m_ofs_host_cluster'):
                return self._m_ofs_host_cluster

            self._m_ofs_host_cluster = (0 if self.is_compressed else self.ofs_hi * 4294967296 + self.ofs_lo * 512)
            return getattr(self, '_m_ofs_host_cluster', None)


    class L2Table(KaitaiStruct):
        """An L2 table, exactly one cluster of header.num_l2_entries entries.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Cluster mapping =="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.L2Table, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.entries = []
            for i in range(self._root.header.num_l2_entries):
                self.entries.append(Qcow2.L2Entry(self._io, self, self._root))



        def _fetch_instances(self):
            pass
            for i in range(len(self.entries)):
                pass
                self.entries[i]._fetch_instances()



    class RefcountBlock(KaitaiStruct):
        """A refcount block: one cluster of header.num_refcount_block_entries
        refcounts of header.refcount_bits bits each. 0 means a free cluster, 1
        a used one, 2 or more a used one that a write must copy (COW).
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Host cluster management ==", Refcount block entry
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.RefcountBlock, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            if self._root.header.refcount_bits >= 8:
                pass
                self.refcounts = []
                for i in range(self._root.header.num_refcount_block_entries):
                    _on = self._root.header.refcount_bits
                    if _on == 16:
                        pass
                        self.refcounts.append(self._io.read_u2be())
                    elif _on == 32:
                        pass
                        self.refcounts.append(self._io.read_u4be())
                    elif _on == 64:
                        pass
                        self.refcounts.append(self._io.read_u8be())
                    elif _on == 8:
                        pass
                        self.refcounts.append(self._io.read_u1())


            if self._root.header.refcount_bits < 8:
                pass
                self.packed_refcounts = self._io.read_bytes_full()



        def _fetch_instances(self):
            pass
            if self._root.header.refcount_bits >= 8:
                pass
                for i in range(len(self.refcounts)):
                    pass
                    _on = self._root.header.refcount_bits
                    if _on == 16:
                        pass
                    elif _on == 32:
                        pass
                    elif _on == 64:
                        pass
                    elif _on == 8:
                        pass


            if self._root.header.refcount_bits < 8:
                pass



    class RefcountTable(KaitaiStruct):
        """The refcount table, pointers to the refcount blocks.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Host cluster management =="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.RefcountTable, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.entries = []
            for i in range(self._root.header.num_refcount_table_entries):
                self.entries.append(Qcow2.RefcountTableEntry(self._io, self, self._root))



        def _fetch_instances(self):
            pass
            for i in range(len(self.entries)):
                pass
                self.entries[i]._fetch_instances()



    class RefcountTableEntry(KaitaiStruct):
        """One refcount table entry (u8), bit 63 first.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Host cluster management ==", Refcount table entry
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.RefcountTableEntry, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.ofs_hi = self._io.read_bits_int_be(32)
            self.ofs_lo = self._io.read_bits_int_be(23)
            self.reserved = self._io.read_bits_int_be(9)
            self.alignment_rule = self._io.read_bytes(0)
            _ = self.alignment_rule
            if not self.ofs_lo % (self._root.header.cluster_size // 512) == 0:
                raise kaitaistruct.ValidationExprError(self.alignment_rule, self._io, u"/types/refcount_table_entry/seq/3")


        def _fetch_instances(self):
            pass
            _ = self.refcount_block
            if hasattr(self, '_m_refcount_block'):
                pass
                self._m_refcount_block._fetch_instances()


        @property
        def ofs_refcount_block(self):
            """Offset in the image file of the refcount block; 0 if it is not
            allocated (every refcount it would hold is 0).
            """
            if hasattr(self, '_m_ofs_refcount_block'):
                return self._m_ofs_refcount_block

            self._m_ofs_refcount_block = self.ofs_hi * 4294967296 + self.ofs_lo * 512
            return getattr(self, '_m_ofs_refcount_block', None)

        @property
        def refcount_block(self):
            """The refcount block (lazy; absent when not allocated)."""
            if hasattr(self, '_m_refcount_block'):
                return self._m_refcount_block

            if self.ofs_refcount_block != 0:
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self.ofs_refcount_block)
                self._raw__m_refcount_block = io.read_bytes(self._root.header.cluster_size)
                _io__raw__m_refcount_block = KaitaiStream(BytesIO(self._raw__m_refcount_block))
                self._m_refcount_block = Qcow2.RefcountBlock(_io__raw__m_refcount_block, self, self._root)
                io.seek(_pos)

            return getattr(self, '_m_refcount_block', None)


    class Snapshot(KaitaiStruct):
        """One snapshot table entry, of variable length (40 bytes, extra data, ID
        and name), padded to a multiple of 8 bytes, except the last entry of the
        table (see `padding`).
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Snapshots =="
        """
        def __init__(self, idx, _io, _parent=None, _root=None):
            super(Qcow2.Snapshot, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self.idx = idx
            self._read()

        def _read(self):
            self.ofs_l1_table = self._io.read_u8be()
            _ = self.ofs_l1_table
            if not _ % self._root.header.cluster_size == 0:
                raise kaitaistruct.ValidationExprError(self.ofs_l1_table, self._io, u"/types/snapshot/seq/0")
            self.num_l1_entries = self._io.read_u4be()
            self.len_id_str = self._io.read_u2be()
            self.len_name = self._io.read_u2be()
            self.date_sec = self._io.read_u4be()
            self.date_nsec = self._io.read_u4be()
            self.vm_clock_nsec = self._io.read_u8be()
            self.len_vm_state_32 = self._io.read_u4be()
            self.len_extra_data = self._io.read_u4be()
            _ = self.len_extra_data
            if not  ((self._root.header.version < 3) or (_ >= 16)) :
                raise kaitaistruct.ValidationExprError(self.len_extra_data, self._io, u"/types/snapshot/seq/8")
            self._raw_extra_data = self._io.read_bytes(self.len_extra_data)
            _io__raw_extra_data = KaitaiStream(BytesIO(self._raw_extra_data))
            self.extra_data = Qcow2.SnapshotExtraData(_io__raw_extra_data, self, self._root)
            self.id_str = (self._io.read_bytes(self.len_id_str)).decode(u"UTF-8")
            self.name = (self._io.read_bytes(self.len_name)).decode(u"UTF-8")
            if self.idx + 1 < self._root.header.num_snapshots:
                pass
                self.padding = self._io.read_bytes((8 - (((40 + self.len_extra_data) + self.len_id_str) + self.len_name) % 8) % 8)



        def _fetch_instances(self):
            pass
            self.extra_data._fetch_instances()
            if self.idx + 1 < self._root.header.num_snapshots:
                pass

            _ = self.l1_table
            if hasattr(self, '_m_l1_table'):
                pass
                self._m_l1_table._fetch_instances()


        @property
        def l1_table(self):
            """The snapshot's L1 table (lazy)."""
            if hasattr(self, '_m_l1_table'):
                return self._m_l1_table

            io = self._root._io
            _pos = io.pos()
            io.seek(self.ofs_l1_table)
            self._m_l1_table = Qcow2.L1Table(self.num_l1_entries, io, self, self._root)
            io.seek(_pos)
            return getattr(self, '_m_l1_table', None)

        @property
        def len_vm_state(self):
            """Size of the VM state in bytes (the 64-bit field when present)."""
            if hasattr(self, '_m_len_vm_state'):
                return self._m_len_vm_state

            self._m_len_vm_state = (self.extra_data.len_vm_state_64 if self.len_extra_data >= 8 else self.len_vm_state_32)
            return getattr(self, '_m_len_vm_state', None)


    class SnapshotExtraData(KaitaiStruct):
        """The extra data of a snapshot table entry: the fields this version of
        the spec defines, each present when the extra data is long enough,
        then any unknown rest (to be ignored).
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, extra data
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.SnapshotExtraData, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            if self._io.size() >= 8:
                pass
                self.len_vm_state_64 = self._io.read_u8be()

            if self._io.size() >= 16:
                pass
                self.len_virtual_disk = self._io.read_u8be()

            if self._io.size() >= 24:
                pass
                self.icount = self._io.read_s8be()

            self.unknown = self._io.read_bytes_full()


        def _fetch_instances(self):
            pass
            if self._io.size() >= 8:
                pass

            if self._io.size() >= 16:
                pass

            if self._io.size() >= 24:
                pass



    class StringExtension(KaitaiStruct):
        """A header extension that is a single string (backing file format name,
        external data file name): the extension length is the string length,
        and the string is not '\0' terminated.
        
        .. seealso::
           QEMU docs/interop/qcow2.txt "== String header extensions =="
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.StringExtension, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.value = (self._io.read_bytes_full()).decode(u"UTF-8")


        def _fetch_instances(self):
            pass


    @property
    def backing_file_name(self):
        """Name of the backing file (not null terminated), usually in the first
        cluster after the header extensions. Absent when the image has no
        backing file. Read as UTF-8.
        """
        if hasattr(self, '_m_backing_file_name'):
            return self._m_backing_file_name

        if self.header.ofs_backing_file != 0:
            pass
            _pos = self._io.pos()
            self._io.seek(self.header.ofs_backing_file)
            self._m_backing_file_name = (self._io.read_bytes(self.header.len_backing_file)).decode(u"UTF-8")
            self._io.seek(_pos)

        return getattr(self, '_m_backing_file_name', None)

    @property
    def guest_clusters(self):
        """Every guest cluster of the virtual disk, in order: item i is guest
        cluster i (guest offsets i * cluster_size onwards). Each item reads
        nothing until its `l1_entry` or `l2_entry` is asked for.
        """
        if hasattr(self, '_m_guest_clusters'):
            return self._m_guest_clusters

        _pos = self._io.pos()
        self._io.seek(0)
        self._m_guest_clusters = []
        for i in range(self.header.num_guest_clusters):
            self._m_guest_clusters.append(Qcow2.GuestCluster(i, self._io, self, self._root))

        self._io.seek(_pos)
        return getattr(self, '_m_guest_clusters', None)

    @property
    def host_clusters(self):
        """Every host cluster of the image file, in order: item i is the cluster
        at offset i * cluster_size. Each item reads nothing until its
        `refcount_table_entry` or `refcount` is asked for.
        """
        if hasattr(self, '_m_host_clusters'):
            return self._m_host_clusters

        _pos = self._io.pos()
        self._io.seek(0)
        self._m_host_clusters = []
        for i in range(((self._io.size() + self.header.cluster_size) - 1) // self.header.cluster_size):
            self._m_host_clusters.append(Qcow2.HostCluster(i, self._io, self, self._root))

        self._io.seek(_pos)
        return getattr(self, '_m_host_clusters', None)

    @property
    def l1_table(self):
        """The active L1 table: header.num_l1_entries entries at
        header.ofs_l1_table. Each allocated entry's `l2_table` instance is the
        L2 table it points at.
        """
        if hasattr(self, '_m_l1_table'):
            return self._m_l1_table

        _pos = self._io.pos()
        self._io.seek(self.header.ofs_l1_table)
        self._m_l1_table = Qcow2.L1Table(self.header.num_l1_entries, self._io, self, self._root)
        self._io.seek(_pos)
        return getattr(self, '_m_l1_table', None)

    @property
    def refcount_table(self):
        """The refcount table: header.num_refcount_table_clusters contiguous
        clusters of refcount table entries.
        """
        if hasattr(self, '_m_refcount_table'):
            return self._m_refcount_table

        _pos = self._io.pos()
        self._io.seek(self.header.ofs_refcount_table)
        self._raw__m_refcount_table = self._io.read_bytes(self.header.num_refcount_table_clusters * self.header.cluster_size)
        _io__raw__m_refcount_table = KaitaiStream(BytesIO(self._raw__m_refcount_table))
        self._m_refcount_table = Qcow2.RefcountTable(_io__raw__m_refcount_table, self, self._root)
        self._io.seek(_pos)
        return getattr(self, '_m_refcount_table', None)

    @property
    def snapshots(self):
        """The snapshot table: header.num_snapshots internal snapshots, each with
        its own L1 table.
        """
        if hasattr(self, '_m_snapshots'):
            return self._m_snapshots

        _pos = self._io.pos()
        self._io.seek(self.header.ofs_snapshots)
        self._m_snapshots = []
        for i in range(self.header.num_snapshots):
            self._m_snapshots.append(Qcow2.Snapshot(i, self._io, self, self._root))

        self._io.seek(_pos)
        return getattr(self, '_m_snapshots', None)



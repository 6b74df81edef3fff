# This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild
# type: ignore

import kaitaistruct
from kaitaistruct import KaitaiStruct, KaitaiStream, BytesIO
from enum import IntEnum


if getattr(kaitaistruct, 'API_VERSION', (0, 9)) < (0, 11):
    raise Exception("Incompatible Kaitai Struct Python API: 0.11 or later is required, but you have %s" % (kaitaistruct.__version__))

class Qcow2(KaitaiStruct):
    """qcow2 ("QEMU copy-on-write", versions 2 and 3), the native disk image
    format of QEMU. The file is made of host clusters of 2^cluster_bits bytes,
    the virtual disk of guest clusters of the same size. A two-level table maps
    guest clusters to host clusters: the L1 table points at L2 tables, whose
    entries say where each guest cluster is (in a host cluster, compressed,
    reading as zeros, or unallocated: read from the backing file). Another
    two-level table, the refcount table and its refcount blocks, counts the
    references to each host cluster. Internal snapshots keep their own L1
    tables.
    
    Only the header and its extensions are parsed up front; every table is a
    lazy instance, read when it is first accessed, so a disk of any size opens
    at once. Start at `l1_table.entries[i].l2_table.entries[j]`: guest cluster
    i * header.num_l2_entries + j. The types `guest_cluster` and
    `host_cluster` look one cluster up (two table entries read in place, no
    whole table); no node of the file creates them: construct one on the
    root's stream, with the root as parent and root, and the cluster number
    as its parameter.
    
    Each "must" of the specification that holds within one structure is a
    `valid` and fails the parse where it is broken; the rules of a lazy
    structure fail when it is read. Rules between structures are not checked:
    refcounts against the tables that use the clusters, the COPIED bits
    against refcounts, tables within the file and not overlapping, the
    encryption header present if and only if the crypt method is LUKS, the
    bitmaps bit only with the bitmaps extension, each header extension type at
    most once, unique bitmap names, unused tail bits of bitmap data, and with
    an external data file, host offsets equal to guest offsets and no
    compressed clusters or snapshots. The header padding is not checked for
    zeros: a later version's field would not be zero. Guest data is not
    decrypted or decompressed.
    
    Where the spec is silent this definition follows QEMU: header extensions
    are read up to the backing file name, else to the end of the first
    cluster; the last snapshot table entry has no padding; data past the end
    of the file reads as zeros in QEMU, so `data` and `compressed_data` hold
    what the file holds, which may be less than a cluster (the last host
    cluster of a file is often written in part).
    
    Offsets inside 64-bit entries (L1, L2, refcount and bitmap table entries)
    are read as bit fields of at most 32 bits and assembled by arithmetic,
    because the JavaScript runtime refuses wider bit fields; the results are
    exact in every target up to 2^53 bytes (8 PiB). Each such entry, or the
    table that holds it, is read from its own substream, so a failed check
    leaves no half-read byte behind in the image's stream.
    
    .. seealso::
       Source - https://www.qemu.org/docs/master/interop/qcow2.html
    """

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
        """The autoclear feature bits, bit 63 first.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#header
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
            _ = self.has_raw_external_data
            if not  (((not (_))) or (self._parent.incompatible_features.has_external_data_file)) :
                raise kaitaistruct.ValidationExprError(self.has_raw_external_data, self._io, u"/types/autoclear_features/seq/2")
            self.has_bitmaps = self._io.read_bits_int_be(1) != 0


        def _fetch_instances(self):
            pass


    class BitmapDirectory(KaitaiStruct):
        """The bitmap directory.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#bitmap-directory
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
        """One bitmap, padded to a multiple of 8 bytes.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#bitmap-directory
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
            if not isinstance(self.bitmap_type, Qcow2.BitmapType):
                raise kaitaistruct.ValidationNotInEnumError(self.bitmap_type, self._io, u"/types/bitmap_directory_entry/seq/3")
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
            """The bitmap table."""
            if hasattr(self, '_m_bitmap_table'):
                return self._m_bitmap_table

            io = self._root._io
            _pos = io.pos()
            io.seek(self.ofs_bitmap_table)
            self._raw__m_bitmap_table = []
            self._m_bitmap_table = []
            for i in range(self.num_bitmap_table_entries):
                self._raw__m_bitmap_table.append(io.read_bytes(8))
                _io__raw__m_bitmap_table = KaitaiStream(BytesIO(self._raw__m_bitmap_table[i]))
                self._m_bitmap_table.append(Qcow2.BitmapTableEntry(_io__raw__m_bitmap_table, self, self._root))

            io.seek(_pos)
            return getattr(self, '_m_bitmap_table', None)


    class BitmapFlags(KaitaiStruct):
        """The flags of a bitmap, bit 31 first.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#bitmap-directory
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.BitmapFlags, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.reserved = self._io.read_bits_int_be(29)
            if not self.reserved == 0:
                raise kaitaistruct.ValidationNotEqualError(0, self.reserved, self._io, u"/types/bitmap_flags/seq/0")
            self.is_extra_data_compatible = self._io.read_bits_int_be(1) != 0
            self.is_auto = self._io.read_bits_int_be(1) != 0
            self.is_in_use = self._io.read_bits_int_be(1) != 0


        def _fetch_instances(self):
            pass


    class BitmapTableEntry(KaitaiStruct):
        """One bitmap table entry, bit 63 first.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#bitmap-table
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.BitmapTableEntry, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.reserved_hi = self._io.read_bits_int_be(8)
            if not self.reserved_hi == 0:
                raise kaitaistruct.ValidationNotEqualError(0, self.reserved_hi, self._io, u"/types/bitmap_table_entry/seq/0")
            self.ofs_hi = self._io.read_bits_int_be(24)
            self.ofs_lo = self._io.read_bits_int_be(23)
            _ = self.ofs_lo
            if not _ % (self._root.header.cluster_size // 512) == 0:
                raise kaitaistruct.ValidationExprError(self.ofs_lo, self._io, u"/types/bitmap_table_entry/seq/2")
            self.reserved_lo = self._io.read_bits_int_be(8)
            if not self.reserved_lo == 0:
                raise kaitaistruct.ValidationNotEqualError(0, self.reserved_lo, self._io, u"/types/bitmap_table_entry/seq/3")
            self.is_all_ones = self._io.read_bits_int_be(1) != 0
            _ = self.is_all_ones
            if not  (((not (_))) or ( ((self.ofs_hi == 0) and (self.ofs_lo == 0)) )) :
                raise kaitaistruct.ValidationExprError(self.is_all_ones, self._io, u"/types/bitmap_table_entry/seq/4")


        def _fetch_instances(self):
            pass
            _ = self.data
            if hasattr(self, '_m_data'):
                pass


        @property
        def data(self):
            """This cluster of bitmap data, least significant bit first.
            
            .. seealso::
               Source - https://www.qemu.org/docs/master/interop/qcow2.html#bitmap-data
            """
            if hasattr(self, '_m_data'):
                return self._m_data

            if self.ofs_bitmap_data != 0:
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self.ofs_bitmap_data)
                self._m_data = io.read_bytes(self._root.header.cluster_size)
                io.seek(_pos)

            return getattr(self, '_m_data', None)

        @property
        def ofs_bitmap_data(self):
            """Offset of this cluster of bitmap data, 0 if unallocated."""
            if hasattr(self, '_m_ofs_bitmap_data'):
                return self._m_ofs_bitmap_data

            self._m_ofs_bitmap_data = self.ofs_hi * 4294967296 + self.ofs_lo * 512
            return getattr(self, '_m_ofs_bitmap_data', None)


    class BitmapsExtension(KaitaiStruct):
        """Where the bitmap directory is.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#bitmaps-extension
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
            """The bitmap directory."""
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
        """The compatible feature bits, bit 63 first.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#header
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
        """One feature name.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#feature-name-table
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
        """Names of feature bits, for error messages.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#feature-name-table
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
        """Where the encryption header (LUKS) is.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#full-disk-encryption-header-pointer
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
                _on = self._root.header.crypt_method
                if _on == Qcow2.CryptMethod.luks:
                    pass
                    self._m_encryption_header._fetch_instances()
                else:
                    pass


        @property
        def encryption_header(self):
            """The encryption header; for LUKS, its partition header and key material."""
            if hasattr(self, '_m_encryption_header'):
                return self._m_encryption_header

            io = self._root._io
            _pos = io.pos()
            io.seek(self.ofs_encryption_header)
            _on = self._root.header.crypt_method
            if _on == Qcow2.CryptMethod.luks:
                pass
                self._raw__m_encryption_header = io.read_bytes(self.len_encryption_header)
                _io__raw__m_encryption_header = KaitaiStream(BytesIO(self._raw__m_encryption_header))
                self._m_encryption_header = Qcow2.LuksHeader(_io__raw__m_encryption_header, self, self._root)
            else:
                pass
                self._m_encryption_header = io.read_bytes(self.len_encryption_header)
            io.seek(_pos)
            return getattr(self, '_m_encryption_header', None)


    class GuestCluster(KaitaiStruct):
        """The lookup of one guest cluster: its L1 and L2 indexes and the one L1
        and L2 entry that map it, read in place in the active tables.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#cluster-mapping
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
            """Its L1 entry; absent past the L1 table (unallocated)."""
            if hasattr(self, '_m_l1_entry'):
                return self._m_l1_entry

            if self.l1_index < self._root.header.num_l1_entries:
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self._root.header.ofs_l1_table + self.l1_index * 8)
                self._raw__m_l1_entry = io.read_bytes(8)
                _io__raw__m_l1_entry = KaitaiStream(BytesIO(self._raw__m_l1_entry))
                self._m_l1_entry = Qcow2.L1Entry(_io__raw__m_l1_entry, self, self._root)
                io.seek(_pos)

            return getattr(self, '_m_l1_entry', None)

        @property
        def l1_index(self):
            """Index of its L1 entry."""
            if hasattr(self, '_m_l1_index'):
                return self._m_l1_index

            self._m_l1_index = self.idx // self._root.header.num_l2_entries
            return getattr(self, '_m_l1_index', None)

        @property
        def l2_entry(self):
            """Its L2 entry; absent without an L2 table (unallocated)."""
            if hasattr(self, '_m_l2_entry'):
                return self._m_l2_entry

            if  ((self.l1_index < self._root.header.num_l1_entries) and (self.l1_entry.is_allocated)) :
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self.l1_entry.ofs_l2_table + self.l2_index * self._root.header.len_l2_entry)
                self._raw__m_l2_entry = io.read_bytes(self._root.header.len_l2_entry)
                _io__raw__m_l2_entry = KaitaiStream(BytesIO(self._raw__m_l2_entry))
                self._m_l2_entry = Qcow2.L2Entry(_io__raw__m_l2_entry, self, self._root)
                io.seek(_pos)

            return getattr(self, '_m_l2_entry', None)

        @property
        def l2_index(self):
            """Index of its entry in the L2 table."""
            if hasattr(self, '_m_l2_index'):
                return self._m_l2_index

            self._m_l2_index = self.idx % self._root.header.num_l2_entries
            return getattr(self, '_m_l2_index', None)

        @property
        def ofs_guest(self):
            """Guest offset of the cluster."""
            if hasattr(self, '_m_ofs_guest'):
                return self._m_ofs_guest

            self._m_ofs_guest = self.idx * self._root.header.cluster_size
            return getattr(self, '_m_ofs_guest', None)


    class Header(KaitaiStruct):
        """The header, at offset 0: 72 bytes in version 2, header_length bytes in
        version 3.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#header
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
            if not isinstance(self.crypt_method, Qcow2.CryptMethod):
                raise kaitaistruct.ValidationNotInEnumError(self.crypt_method, self._io, u"/types/header/seq/6")
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
                if not (_ == Qcow2.CompressionType.zstd if self.incompatible_features.has_compression_type else _ == Qcow2.CompressionType.zlib):
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
            """Size of a cluster in bytes."""
            if hasattr(self, '_m_cluster_size'):
                return self._m_cluster_size

            self._m_cluster_size = 1 << self.cluster_bits
            return getattr(self, '_m_cluster_size', None)

        @property
        def compression(self):
            """Compression method in use (zlib when the field is absent)."""
            if hasattr(self, '_m_compression'):
                return self._m_compression

            self._m_compression = KaitaiStream.resolve_enum(Qcow2.CompressionType, (int(self.compression_type) if  ((self.version >= 3) and (self.len_header > 104))  else 0))
            return getattr(self, '_m_compression', None)

        @property
        def has_extended_l2(self):
            """L2 entries are extended (128 bits, with subclusters)."""
            if hasattr(self, '_m_has_extended_l2'):
                return self._m_has_extended_l2

            self._m_has_extended_l2 =  ((self.version >= 3) and (self.incompatible_features.has_extended_l2)) 
            return getattr(self, '_m_has_extended_l2', None)

        @property
        def has_external_data_file(self):
            """Guest clusters are in an external data file."""
            if hasattr(self, '_m_has_external_data_file'):
                return self._m_has_external_data_file

            self._m_has_external_data_file =  ((self.version >= 3) and (self.incompatible_features.has_external_data_file)) 
            return getattr(self, '_m_has_external_data_file', None)

        @property
        def is_corrupt(self):
            """The corrupt bit."""
            if hasattr(self, '_m_is_corrupt'):
                return self._m_is_corrupt

            self._m_is_corrupt =  ((self.version >= 3) and (self.incompatible_features.is_corrupt)) 
            return getattr(self, '_m_is_corrupt', None)

        @property
        def is_dirty(self):
            """The dirty bit."""
            if hasattr(self, '_m_is_dirty'):
                return self._m_is_dirty

            self._m_is_dirty =  ((self.version >= 3) and (self.incompatible_features.is_dirty)) 
            return getattr(self, '_m_is_dirty', None)

        @property
        def len_header_extension_area(self):
            """Size of the header extension area."""
            if hasattr(self, '_m_len_header_extension_area'):
                return self._m_len_header_extension_area

            self._m_len_header_extension_area = (self.ofs_end_header_extensions - self.ofs_header_extensions if self.ofs_end_header_extensions > self.ofs_header_extensions else 0)
            return getattr(self, '_m_len_header_extension_area', None)

        @property
        def len_l2_entry(self):
            """Size of an L2 entry in bytes."""
            if hasattr(self, '_m_len_l2_entry'):
                return self._m_len_l2_entry

            self._m_len_l2_entry = (16 if self.has_extended_l2 else 8)
            return getattr(self, '_m_len_l2_entry', None)

        @property
        def len_subcluster(self):
            """Size of a subcluster (the cluster itself without extended L2)."""
            if hasattr(self, '_m_len_subcluster'):
                return self._m_len_subcluster

            self._m_len_subcluster = (self.cluster_size // 32 if self.has_extended_l2 else self.cluster_size)
            return getattr(self, '_m_len_subcluster', None)

        @property
        def num_compressed_offset_bits(self):
            """Width x of the host offset in a compressed cluster descriptor."""
            if hasattr(self, '_m_num_compressed_offset_bits'):
                return self._m_num_compressed_offset_bits

            self._m_num_compressed_offset_bits = 62 - (self.cluster_bits - 8)
            return getattr(self, '_m_num_compressed_offset_bits', None)

        @property
        def num_guest_clusters(self):
            """Number of guest clusters (the last may be partial)."""
            if hasattr(self, '_m_num_guest_clusters'):
                return self._m_num_guest_clusters

            self._m_num_guest_clusters = ((self.len_virtual_disk + self.cluster_size) - 1) // self.cluster_size
            return getattr(self, '_m_num_guest_clusters', None)

        @property
        def num_l2_entries(self):
            """Number of entries in an L2 table."""
            if hasattr(self, '_m_num_l2_entries'):
                return self._m_num_l2_entries

            self._m_num_l2_entries = self.cluster_size // self.len_l2_entry
            return getattr(self, '_m_num_l2_entries', None)

        @property
        def num_refcount_block_entries(self):
            """Number of refcounts in a refcount block."""
            if hasattr(self, '_m_num_refcount_block_entries'):
                return self._m_num_refcount_block_entries

            self._m_num_refcount_block_entries = (self.cluster_size * 8) // self.refcount_bits
            return getattr(self, '_m_num_refcount_block_entries', None)

        @property
        def num_refcount_table_entries(self):
            """Number of refcount table entries."""
            if hasattr(self, '_m_num_refcount_table_entries'):
                return self._m_num_refcount_table_entries

            self._m_num_refcount_table_entries = self.num_refcount_table_clusters * (self.cluster_size // 8)
            return getattr(self, '_m_num_refcount_table_entries', None)

        @property
        def ofs_end_header_extensions(self):
            """Where the header extensions end."""
            if hasattr(self, '_m_ofs_end_header_extensions'):
                return self._m_ofs_end_header_extensions

            self._m_ofs_end_header_extensions = (self.ofs_backing_file if self.ofs_backing_file != 0 else self.cluster_size)
            return getattr(self, '_m_ofs_end_header_extensions', None)

        @property
        def ofs_header_extensions(self):
            """Offset of the first header extension."""
            if hasattr(self, '_m_ofs_header_extensions'):
                return self._m_ofs_header_extensions

            self._m_ofs_header_extensions = (self.len_header if self.version >= 3 else 72)
            return getattr(self, '_m_ofs_header_extensions', None)

        @property
        def refcount_bits(self):
            """Width of a refcount in bits."""
            if hasattr(self, '_m_refcount_bits'):
                return self._m_refcount_bits

            self._m_refcount_bits = 1 << (self.refcount_order if self.version >= 3 else 4)
            return getattr(self, '_m_refcount_bits', None)


    class HeaderExtension(KaitaiStruct):
        """One header extension, padded to a multiple of 8 bytes.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#header-extensions
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
        """Header extensions up to the end marker or the end of the area.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#header-extensions
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
        """The lookup of one host cluster's refcount: the one refcount table entry
        and the one refcount, read in place.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#host-cluster-management
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
            """A refcount block covers the cluster."""
            if hasattr(self, '_m_has_refcount_block'):
                return self._m_has_refcount_block

            self._m_has_refcount_block =  ((self.refcount_table_index < self._root.header.num_refcount_table_entries) and (self.refcount_table_entry.ofs_refcount_block != 0)) 
            return getattr(self, '_m_has_refcount_block', None)

        @property
        def ofs_host_cluster(self):
            """Offset of the cluster in the file."""
            if hasattr(self, '_m_ofs_host_cluster'):
                return self._m_ofs_host_cluster

            self._m_ofs_host_cluster = self.idx * self._root.header.cluster_size
            return getattr(self, '_m_ofs_host_cluster', None)

        @property
        def refcount(self):
            """The refcount (bit 0 of a byte is its least significant bit)."""
            if hasattr(self, '_m_refcount'):
                return self._m_refcount

            self._m_refcount = (0 if (not (self.has_refcount_block)) else (self.refcount_word if self._root.header.refcount_bits >= 8 else (self.refcount_word >> (self.refcount_block_index * self._root.header.refcount_bits) % 8) % (1 << self._root.header.refcount_bits)))
            return getattr(self, '_m_refcount', None)

        @property
        def refcount_block_index(self):
            """Index of its refcount in the block."""
            if hasattr(self, '_m_refcount_block_index'):
                return self._m_refcount_block_index

            self._m_refcount_block_index = self.idx % self._root.header.num_refcount_block_entries
            return getattr(self, '_m_refcount_block_index', None)

        @property
        def refcount_table_entry(self):
            """Its refcount table entry; absent past the refcount table."""
            if hasattr(self, '_m_refcount_table_entry'):
                return self._m_refcount_table_entry

            if self.refcount_table_index < self._root.header.num_refcount_table_entries:
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self._root.header.ofs_refcount_table + self.refcount_table_index * 8)
                self._raw__m_refcount_table_entry = io.read_bytes(8)
                _io__raw__m_refcount_table_entry = KaitaiStream(BytesIO(self._raw__m_refcount_table_entry))
                self._m_refcount_table_entry = Qcow2.RefcountTableEntry(_io__raw__m_refcount_table_entry, self, self._root)
                io.seek(_pos)

            return getattr(self, '_m_refcount_table_entry', None)

        @property
        def refcount_table_index(self):
            """Index of its refcount table entry."""
            if hasattr(self, '_m_refcount_table_index'):
                return self._m_refcount_table_index

            self._m_refcount_table_index = self.idx // self._root.header.num_refcount_block_entries
            return getattr(self, '_m_refcount_table_index', None)

        @property
        def refcount_word(self):
            """The refcount, or for widths under 8 bits the byte that holds it."""
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
        """The incompatible feature bits, bit 63 first.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#header
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.IncompatibleFeatures, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.reserved_hi = self._io.read_bits_int_be(32)
            if not self.reserved_hi == 0:
                raise kaitaistruct.ValidationNotEqualError(0, self.reserved_hi, self._io, u"/types/incompatible_features/seq/0")
            self.reserved_lo = self._io.read_bits_int_be(27)
            if not self.reserved_lo == 0:
                raise kaitaistruct.ValidationNotEqualError(0, self.reserved_lo, self._io, u"/types/incompatible_features/seq/1")
            self.has_extended_l2 = self._io.read_bits_int_be(1) != 0
            _ = self.has_extended_l2
            if not  (((not (_))) or (self._parent.cluster_bits >= 14)) :
                raise kaitaistruct.ValidationExprError(self.has_extended_l2, self._io, u"/types/incompatible_features/seq/2")
            self.has_compression_type = self._io.read_bits_int_be(1) != 0
            self.has_external_data_file = self._io.read_bits_int_be(1) != 0
            self.is_corrupt = self._io.read_bits_int_be(1) != 0
            self.is_dirty = self._io.read_bits_int_be(1) != 0


        def _fetch_instances(self):
            pass


    class L1Entry(KaitaiStruct):
        """One L1 table entry, bit 63 first.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#cluster-mapping
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.L1Entry, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.is_copied = self._io.read_bits_int_be(1) != 0
            self.reserved_hi = self._io.read_bits_int_be(7)
            if not self.reserved_hi == 0:
                raise kaitaistruct.ValidationNotEqualError(0, self.reserved_hi, self._io, u"/types/l1_entry/seq/1")
            self.ofs_hi = self._io.read_bits_int_be(24)
            self.ofs_lo = self._io.read_bits_int_be(23)
            _ = self.ofs_lo
            if not _ % (self._root.header.cluster_size // 512) == 0:
                raise kaitaistruct.ValidationExprError(self.ofs_lo, self._io, u"/types/l1_entry/seq/3")
            self.reserved_lo = self._io.read_bits_int_be(9)
            if not self.reserved_lo == 0:
                raise kaitaistruct.ValidationNotEqualError(0, self.reserved_lo, self._io, u"/types/l1_entry/seq/4")


        def _fetch_instances(self):
            pass
            _ = self.l2_table
            if hasattr(self, '_m_l2_table'):
                pass
                self._m_l2_table._fetch_instances()


        @property
        def is_allocated(self):
            """The entry points at an L2 table."""
            if hasattr(self, '_m_is_allocated'):
                return self._m_is_allocated

            self._m_is_allocated = self.ofs_l2_table != 0
            return getattr(self, '_m_is_allocated', None)

        @property
        def l2_table(self):
            """The L2 table."""
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
            """Offset of the L2 table, 0 if unallocated."""
            if hasattr(self, '_m_ofs_l2_table'):
                return self._m_ofs_l2_table

            self._m_ofs_l2_table = self.ofs_hi * 4294967296 + self.ofs_lo * 512
            return getattr(self, '_m_ofs_l2_table', None)


    class L1Table(KaitaiStruct):
        """An L1 table (the active one or a snapshot's).
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#cluster-mapping
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.L1Table, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.entries = []
            i = 0
            while not self._io.is_eof():
                self.entries.append(Qcow2.L1Entry(self._io, self, self._root))
                i += 1



        def _fetch_instances(self):
            pass
            for i in range(len(self.entries)):
                pass
                self.entries[i]._fetch_instances()



    class L2Entry(KaitaiStruct):
        """One L2 entry, bit 63 first: a standard or a compressed cluster
        descriptor (by bit 62), then, with extended L2 entries, the subcluster
        bitmap.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#cluster-mapping
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
                _ = self.ofs_lo
                if not _ % (self._root.header.cluster_size // 512) == 0:
                    raise kaitaistruct.ValidationExprError(self.ofs_lo, self._io, u"/types/l2_entry/seq/4")

            if (not (self.is_compressed)):
                pass
                self.reserved_lo = self._io.read_bits_int_be(8)

            if (not (self.is_compressed)):
                pass
                self.reads_as_zeros = self._io.read_bits_int_be(1) != 0

            if self.is_compressed:
                pass
                self.compressed_hi = self._io.read_bits_int_be(30)
                _ = self.compressed_hi
                if not _ % (1 << self._root.header.num_compressed_offset_bits - 32) < 16777216:
                    raise kaitaistruct.ValidationExprError(self.compressed_hi, self._io, u"/types/l2_entry/seq/7")

            if self.is_compressed:
                pass
                self.compressed_lo = self._io.read_bits_int_be(32)

            if self._root.header.has_extended_l2:
                pass
                self.zero_bitmap = self._io.read_u4be()
                _ = self.zero_bitmap
                if not  (((not (self.is_compressed))) or (_ == 0)) :
                    raise kaitaistruct.ValidationExprError(self.zero_bitmap, self._io, u"/types/l2_entry/seq/9")

            if self._root.header.has_extended_l2:
                pass
                self.alloc_bitmap = self._io.read_u4be()
                _ = self.alloc_bitmap
                if not (_ == 0 if self.is_compressed else  ((_ & self.zero_bitmap == 0) and ( ((_ == 0) or (self.ofs_host_cluster != 0) or (self.is_copied)) )) ):
                    raise kaitaistruct.ValidationExprError(self.alloc_bitmap, self._io, u"/types/l2_entry/seq/10")



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

            _ = self.subclusters
            if hasattr(self, '_m_subclusters'):
                pass
                for i in range(len(self._m_subclusters)):
                    pass
                    self._m_subclusters[i]._fetch_instances()



        @property
        def cluster_type(self):
            """The cluster's type as QEMU classifies it (without the subcluster bitmap)."""
            if hasattr(self, '_m_cluster_type'):
                return self._m_cluster_type

            self._m_cluster_type = KaitaiStream.resolve_enum(Qcow2.ClusterType, (4 if self.is_compressed else ((2 if self.ofs_host_cluster != 0 else 1) if  (((not (self._root.header.has_extended_l2))) and (self.reads_as_zeros))  else (3 if  ((self.ofs_host_cluster != 0) or ( ((self._root.header.has_external_data_file) and (self.is_copied)) ))  else 0))))
            return getattr(self, '_m_cluster_type', None)

        @property
        def compressed_data(self):
            """The compressed data, not decoded (raw deflate or a zstd frame).
            
            .. seealso::
               Source - https://www.qemu.org/docs/master/interop/qcow2.html#cluster-mapping
            """
            if hasattr(self, '_m_compressed_data'):
                return self._m_compressed_data

            if self.is_compressed:
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self.ofs_compressed_data)
                self._m_compressed_data = io.read_bytes(self.len_data_in_file)
                io.seek(_pos)

            return getattr(self, '_m_compressed_data', None)

        @property
        def data(self):
            """The host cluster's bytes (encrypted if the image is; with extended
            L2 entries only allocated subclusters hold guest data).
            """
            if hasattr(self, '_m_data'):
                return self._m_data

            if  ((self.cluster_type == Qcow2.ClusterType.normal) and ((not (self._root.header.has_external_data_file)))) :
                pass
                io = self._root._io
                _pos = io.pos()
                io.seek(self.ofs_host_cluster)
                self._m_data = io.read_bytes(self.len_data_in_file)
                io.seek(_pos)

            return getattr(self, '_m_data', None)

        @property
        def is_allocated(self):
            """The entry has host storage (offset 0 with bit 63 is offset 0 of an external data file)."""
            if hasattr(self, '_m_is_allocated'):
                return self._m_is_allocated

            self._m_is_allocated =  ((self.is_compressed) or (self.ofs_host_cluster != 0) or (self.is_copied)) 
            return getattr(self, '_m_is_allocated', None)

        @property
        def is_zero(self):
            """The whole cluster reads as zeros."""
            if hasattr(self, '_m_is_zero'):
                return self._m_is_zero

            self._m_is_zero =  (((not (self.is_compressed))) and ((self.zero_bitmap == 4294967295 if self._root.header.has_extended_l2 else self.reads_as_zeros))) 
            return getattr(self, '_m_is_zero', None)

        @property
        def len_compressed_data(self):
            """Bytes from the compressed data's offset to the end of its last
            sector; the data ends within them.
            """
            if hasattr(self, '_m_len_compressed_data'):
                return self._m_len_compressed_data

            self._m_len_compressed_data = ((self.num_additional_sectors + 1) * 512 - self.ofs_compressed_data % 512 if self.is_compressed else 0)
            return getattr(self, '_m_len_compressed_data', None)

        @property
        def len_data_in_file(self):
            """Bytes of `data` or `compressed_data` the file holds: all of them, or
            those before its end (QEMU reads zeros past it).
            """
            if hasattr(self, '_m_len_data_in_file'):
                return self._m_len_data_in_file

            self._m_len_data_in_file = (0 if self._root._io.size() <= (self.ofs_compressed_data if self.is_compressed else self.ofs_host_cluster) else (self._root._io.size() - (self.ofs_compressed_data if self.is_compressed else self.ofs_host_cluster) if self._root._io.size() - (self.ofs_compressed_data if self.is_compressed else self.ofs_host_cluster) < (self.len_compressed_data if self.is_compressed else self._root.header.cluster_size) else (self.len_compressed_data if self.is_compressed else self._root.header.cluster_size)))
            return getattr(self, '_m_len_data_in_file', None)

        @property
        def num_additional_sectors(self):
            """Number of 512-byte sectors of compressed data after the first."""
            if hasattr(self, '_m_num_additional_sectors'):
                return self._m_num_additional_sectors

            self._m_num_additional_sectors = (self.compressed_hi // (1 << self._root.header.num_compressed_offset_bits - 32) if self.is_compressed else 0)
            return getattr(self, '_m_num_additional_sectors', None)

        @property
        def ofs_compressed_data(self):
            """Offset of the compressed data."""
            if hasattr(self, '_m_ofs_compressed_data'):
                return self._m_ofs_compressed_data

            self._m_ofs_compressed_data = ((self.compressed_hi % (1 << self._root.header.num_compressed_offset_bits - 32)) * 4294967296 + self.compressed_lo if self.is_compressed else 0)
            return getattr(self, '_m_ofs_compressed_data', None)

        @property
        def ofs_host_cluster(self):
            """Offset of the host cluster (in the external data file if any), 0 if none."""
            if hasattr(self, '_m_ofs_host_cluster'):
                return self._m_ofs_host_cluster

            self._m_ofs_host_cluster = (0 if self.is_compressed else self.ofs_hi * 4294967296 + self.ofs_lo * 512)
            return getattr(self, '_m_ofs_host_cluster', None)

        @property
        def status(self):
            """How the guest cluster reads, subclusters included: from the host
            cluster, as zeros, unallocated, compressed, or subclusters that
            differ (see `subclusters`).
            """
            if hasattr(self, '_m_status'):
                return self._m_status

            self._m_status = KaitaiStream.resolve_enum(Qcow2.ClusterStatus, (3 if self.is_compressed else ((2 if self.cluster_type == Qcow2.ClusterType.normal else (0 if self.cluster_type == Qcow2.ClusterType.unallocated else 1)) if (not (self._root.header.has_extended_l2)) else (2 if self.alloc_bitmap == 4294967295 else (1 if self.zero_bitmap == 4294967295 else (0 if self.alloc_bitmap | self.zero_bitmap == 0 else 4))))))
            return getattr(self, '_m_status', None)

        @property
        def subclusters(self):
            """Extended L2 entries, the status of each subcluster."""
            if hasattr(self, '_m_subclusters'):
                return self._m_subclusters

            if  ((self._root.header.has_extended_l2) and ((not (self.is_compressed)))) :
                pass
                _pos = self._io.pos()
                self._io.seek(0)
                self._m_subclusters = []
                for i in range(32):
                    self._m_subclusters.append(Qcow2.Subcluster(i, self._io, self, self._root))

                self._io.seek(_pos)

            return getattr(self, '_m_subclusters', None)


    class L2Table(KaitaiStruct):
        """An L2 table, one cluster.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#cluster-mapping
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



    class LuksHeader(KaitaiStruct):
        """The LUKS version 1 partition header at the start of the encryption
        header, its key slots labelled; the key material follows it, raw. (The
        Kaitai format gallery's luks.ksy describes the same header; a copy of
        this file there could import it instead.)
        
        .. seealso::
           Source - https://gitlab.com/cryptsetup/cryptsetup/-/wikis/LUKS-standard/on-disk-format.pdf
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.LuksHeader, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.magic = self._io.read_bytes(6)
            if not self.magic == b"\x4C\x55\x4B\x53\xBA\xBE":
                raise kaitaistruct.ValidationNotEqualError(b"\x4C\x55\x4B\x53\xBA\xBE", self.magic, self._io, u"/types/luks_header/seq/0")
            self.version = self._io.read_u2be()
            self.cipher_name = (KaitaiStream.bytes_terminate(self._io.read_bytes(32), 0, False)).decode(u"ASCII")
            self.cipher_mode = (KaitaiStream.bytes_terminate(self._io.read_bytes(32), 0, False)).decode(u"ASCII")
            self.hash_spec = (KaitaiStream.bytes_terminate(self._io.read_bytes(32), 0, False)).decode(u"ASCII")
            self.ofs_payload = self._io.read_u4be()
            self.len_key = self._io.read_u4be()
            self.mk_digest = self._io.read_bytes(20)
            self.mk_digest_salt = self._io.read_bytes(32)
            self.mk_digest_iterations = self._io.read_u4be()
            self.uuid = (KaitaiStream.bytes_terminate(self._io.read_bytes(40), 0, False)).decode(u"ASCII")
            self.key_slots = []
            for i in range(8):
                self.key_slots.append(Qcow2.LuksKeySlot(self._io, self, self._root))



        def _fetch_instances(self):
            pass
            for i in range(len(self.key_slots)):
                pass
                self.key_slots[i]._fetch_instances()



    class LuksKeySlot(KaitaiStruct):
        """One LUKS key slot.
        
        .. seealso::
           Source - https://gitlab.com/cryptsetup/cryptsetup/-/wikis/LUKS-standard/on-disk-format.pdf
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.LuksKeySlot, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.state = KaitaiStream.resolve_enum(Qcow2.LuksKeySlotState, self._io.read_u4be())
            self.iterations = self._io.read_u4be()
            self.salt = self._io.read_bytes(32)
            self.ofs_key_material = self._io.read_u4be()
            self.num_stripes = self._io.read_u4be()


        def _fetch_instances(self):
            pass


    class RefcountBlock(KaitaiStruct):
        """A refcount block, one cluster of refcounts.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#host-cluster-management
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
        """The refcount table.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#host-cluster-management
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
        """One refcount table entry, bit 63 first.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#host-cluster-management
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2.RefcountTableEntry, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.ofs_hi = self._io.read_bits_int_be(32)
            self.ofs_lo = self._io.read_bits_int_be(23)
            _ = self.ofs_lo
            if not _ % (self._root.header.cluster_size // 512) == 0:
                raise kaitaistruct.ValidationExprError(self.ofs_lo, self._io, u"/types/refcount_table_entry/seq/1")
            self.reserved = self._io.read_bits_int_be(9)


        def _fetch_instances(self):
            pass
            _ = self.refcount_block
            if hasattr(self, '_m_refcount_block'):
                pass
                self._m_refcount_block._fetch_instances()


        @property
        def ofs_refcount_block(self):
            """Offset of the refcount block, 0 if unallocated (refcounts 0)."""
            if hasattr(self, '_m_ofs_refcount_block'):
                return self._m_ofs_refcount_block

            self._m_ofs_refcount_block = self.ofs_hi * 4294967296 + self.ofs_lo * 512
            return getattr(self, '_m_ofs_refcount_block', None)

        @property
        def refcount_block(self):
            """The refcount block."""
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
        """One snapshot table entry.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#snapshots
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
            """The snapshot's L1 table."""
            if hasattr(self, '_m_l1_table'):
                return self._m_l1_table

            io = self._root._io
            _pos = io.pos()
            io.seek(self.ofs_l1_table)
            self._raw__m_l1_table = io.read_bytes(self.num_l1_entries * 8)
            _io__raw__m_l1_table = KaitaiStream(BytesIO(self._raw__m_l1_table))
            self._m_l1_table = Qcow2.L1Table(_io__raw__m_l1_table, self, self._root)
            io.seek(_pos)
            return getattr(self, '_m_l1_table', None)

        @property
        def len_vm_state(self):
            """Size of the VM state in bytes."""
            if hasattr(self, '_m_len_vm_state'):
                return self._m_len_vm_state

            self._m_len_vm_state = (self.extra_data.len_vm_state_64 if self.len_extra_data >= 8 else self.len_vm_state_32)
            return getattr(self, '_m_len_vm_state', None)


    class SnapshotExtraData(KaitaiStruct):
        """The extra data of a snapshot, each field present if long enough.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#snapshots
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
        """A string extension (backing file format, external data file name).
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#string-header-extensions
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


    class Subcluster(KaitaiStruct):
        """One subcluster of an extended L2 entry.
        
        .. seealso::
           Source - https://www.qemu.org/docs/master/interop/qcow2.html#extended-l2-entries
        """
        def __init__(self, idx, _io, _parent=None, _root=None):
            super(Qcow2.Subcluster, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self.idx = idx
            self._read()

        def _read(self):
            pass


        def _fetch_instances(self):
            pass

        @property
        def ofs_host(self):
            """Host offset of the subcluster (meaningful when allocated)."""
            if hasattr(self, '_m_ofs_host'):
                return self._m_ofs_host

            self._m_ofs_host = self._parent.ofs_host_cluster + self.idx * self._root.header.len_subcluster
            return getattr(self, '_m_ofs_host', None)

        @property
        def status(self):
            """Allocated, reads as zeros, or unallocated."""
            if hasattr(self, '_m_status'):
                return self._m_status

            self._m_status = KaitaiStream.resolve_enum(Qcow2.SubclusterStatus, (1 if self._parent.alloc_bitmap >> self.idx & 1 == 1 else (2 if self._parent.zero_bitmap >> self.idx & 1 == 1 else 0)))
            return getattr(self, '_m_status', None)


    @property
    def backing_file_name(self):
        """Name of the backing file (not null terminated)."""
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
    def l1_table(self):
        """The active L1 table."""
        if hasattr(self, '_m_l1_table'):
            return self._m_l1_table

        _pos = self._io.pos()
        self._io.seek(self.header.ofs_l1_table)
        self._raw__m_l1_table = self._io.read_bytes(self.header.num_l1_entries * 8)
        _io__raw__m_l1_table = KaitaiStream(BytesIO(self._raw__m_l1_table))
        self._m_l1_table = Qcow2.L1Table(_io__raw__m_l1_table, self, self._root)
        self._io.seek(_pos)
        return getattr(self, '_m_l1_table', None)

    @property
    def refcount_table(self):
        """The refcount table."""
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
        """The snapshot table."""
        if hasattr(self, '_m_snapshots'):
            return self._m_snapshots

        _pos = self._io.pos()
        self._io.seek(self.header.ofs_snapshots)
        self._m_snapshots = []
        for i in range(self.header.num_snapshots):
            self._m_snapshots.append(Qcow2.Snapshot(i, self._io, self, self._root))

        self._io.seek(_pos)
        return getattr(self, '_m_snapshots', None)



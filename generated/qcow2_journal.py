# This is a generated file! Please edit source .ksy file and use kaitai-struct-compiler to rebuild
# type: ignore

import kaitaistruct
from kaitaistruct import KaitaiStruct, KaitaiStream, BytesIO
from enum import IntEnum


if getattr(kaitaistruct, 'API_VERSION', (0, 9)) < (0, 11):
    raise Exception("Incompatible Kaitai Struct Python API: 0.11 or later is required, but you have %s" % (kaitaistruct.__version__))

class Qcow2Journal(KaitaiStruct):
    """The metadata journal proposed for QCOW2 images by the deduplication RFC
    series (V8, June 2013): a sequential log of entries appended to a
    previously reset area, used to record deduplication hashes.
    
    A journal area is N >= 1 journal clusters of exactly 4096 bytes each,
    whatever the image's own cluster size. A reset area has every byte equal
    to 0xFF. Each entry is a two-byte header (size, type) and an optional
    payload; the size counts the whole entry, header included. Entries never
    span two clusters: a cluster is closed by an END entry whose size reaches
    exactly the next cluster boundary, and replay continues there. Replay stops
    at the first NONE entry (the 0xFF bytes of the reset area) or after the
    last cluster.
    
    This definition parses a whole area as it is loaded in the Web IDE: the
    replayed clusters, then the unreplayed rest of the area as raw bytes (it is
    not parsed as entries, so garbage after the tail never hides the journal).
    Rules a parser can check are `valid` keys and fail the parse; anomalies a
    crash or a stray write can leave (a torn write, a dirty tail, unassigned
    types, dirty END padding) parse without error and are exposed as `is_*` and
    `has_*` instances.
    
    Where the spec text is silent or contradicts itself this definition follows
    the qjournal project's format reference, docs/format.md, whose numbered rules
    are cited as "D<n>" below.
    
    .. seealso::
       [RFC V8 01/24] qcow2: Add journal specification (docs/specs/qcow2.txt "== Journal =="), Benoît Canet, qemu-devel, 2013-06-20; quoted in docs/format.md section 2
    
    
    .. seealso::
       docs/format.md D1-D25 (the qjournal project reading of the spec)
    """

    class EntryType(IntEnum):
        end = 1
        hash = 2
        none = 255
    def __init__(self, _io, _parent=None, _root=None):
        super(Qcow2Journal, self).__init__(_io)
        self._parent = _parent
        self._root = _root or self
        self._read()

    def _read(self):
        self.area_length_rule = self._io.read_bytes(0)
        _ = self.area_length_rule
        if not  ((self._io.size() > 0) and (self._io.size() % 4096 == 0)) :
            raise kaitaistruct.ValidationExprError(self.area_length_rule, self._io, u"/seq/0")
        self._raw_clusters = []
        self.clusters = []
        i = 0
        while True:
            _buf = self._io.read_bytes(4096)
            self._raw_clusters.append(_buf)
            _io__raw_clusters = KaitaiStream(BytesIO(self._raw_clusters[-1]))
            _ = Qcow2Journal.Cluster(_io__raw_clusters, self, self._root)
            self.clusters.append(_)
            if  (((not (_.is_closed))) or (self._io.is_eof())) :
                break
            i += 1
        self.unreplayed = self._io.read_bytes_full()


    def _fetch_instances(self):
        pass
        for i in range(len(self.clusters)):
            pass
            self.clusters[i]._fetch_instances()


    class Cluster(KaitaiStruct):
        """One 4096-byte journal cluster, parsed up to its END (a closed cluster)
        or up to the NONE where replay stops (an open or empty cluster). Parsed
        from its own 4096-byte substream: entries never span two clusters, so a
        cluster can be read on its own, without the rest of the area.
        
        .. seealso::
           docs/format.md D5
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2Journal.Cluster, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.entries = []
            i = 0
            while True:
                _ = Qcow2Journal.Entry(self._io, self, self._root)
                self.entries.append(_)
                if  ((_.type_code == 1) or (_.type_code == 255)) :
                    break
                i += 1
            self.tail = self._io.read_bytes_full()


        def _fetch_instances(self):
            pass
            for i in range(len(self.entries)):
                pass
                self.entries[i]._fetch_instances()


        @property
        def has_dirty_tail(self):
            """True when a byte after the NONE header of an open cluster is not 0xFF."""
            if hasattr(self, '_m_has_dirty_tail'):
                return self._m_has_dirty_tail

            self._m_has_dirty_tail =  (((not (self.is_closed))) and (len(self.tail) > 0) and (KaitaiStream.byte_array_min(self.tail) != 255)) 
            return getattr(self, '_m_has_dirty_tail', None)

        @property
        def is_closed(self):
            """True when an END closes the cluster and replay goes on to the next one."""
            if hasattr(self, '_m_is_closed'):
                return self._m_is_closed

            self._m_is_closed = self.terminator.type_code == 1
            return getattr(self, '_m_is_closed', None)

        @property
        def is_torn(self):
            """True when the NONE that ends replay here is a torn write."""
            if hasattr(self, '_m_is_torn'):
                return self._m_is_torn

            self._m_is_torn = self.terminator.is_torn
            return getattr(self, '_m_is_torn', None)

        @property
        def num_regular(self):
            """Number of regular entries (every type but END and NONE)."""
            if hasattr(self, '_m_num_regular'):
                return self._m_num_regular

            self._m_num_regular = len(self.entries) - 1
            return getattr(self, '_m_num_regular', None)

        @property
        def ofs_tail(self):
            """Offset, in the cluster, of the NONE where replay stops (where the
            next entry would go); 4096 for a closed cluster.
            """
            if hasattr(self, '_m_ofs_tail'):
                return self._m_ofs_tail

            self._m_ofs_tail = self._io.size() - (0 if self.is_closed else len(self.tail) + 2)
            return getattr(self, '_m_ofs_tail', None)

        @property
        def terminator(self):
            """The END or NONE entry that ends this cluster's entries."""
            if hasattr(self, '_m_terminator'):
                return self._m_terminator

            self._m_terminator = self.entries[-1]
            return getattr(self, '_m_terminator', None)


    class Entry(KaitaiStruct):
        """One journal entry: a size byte, a type byte, then `len_entry - 2`
        payload bytes. Validation follows D3 and D5; each failure is corruption
        at this entry's offset (docs/format.md D13 names which rule an entry
        that breaks several is reported under).
        
        The type byte is `type_code`, a number; the `entry_type` instance is the
        same byte resolved to the enum. A HASH entry's payload is its record:
        `digest`, `physical_sector`, `first_logical_sector` (D8). An entry is
        always read from a cluster's 4096-byte stream (the `cluster` type), so
        the room left in the cluster is `4096 - _io.pos`.
        
        .. seealso::
           RFC V8 journal specification, "QCOW2 journal entry" (docs/format.md section 2)
        
        
        .. seealso::
           docs/format.md D3, D5
        """
        def __init__(self, _io, _parent=None, _root=None):
            super(Qcow2Journal.Entry, self).__init__(_io)
            self._parent = _parent
            self._root = _root
            self._read()

        def _read(self):
            self.len_entry = self._io.read_u1()
            if not self.len_entry >= 2:
                raise kaitaistruct.ValidationLessThanError(2, self.len_entry, self._io, u"/types/entry/seq/0")
            self.type_code = self._io.read_u1()
            _ = self.type_code
            if not  (( ((_ == 2) and (self.len_entry >= 19) and (self.len_entry <= 254) and (self.len_entry <= 4096 - self._io.pos())) ) or (_ == 255) or ( ((_ == 1) and (self.len_entry == (4096 - self._io.pos()) + 2)) ) or ( ((_ != 1) and (_ != 2) and (self.len_entry <= 254) and (self.len_entry <= 4096 - self._io.pos())) )) :
                raise kaitaistruct.ValidationExprError(self.type_code, self._io, u"/types/entry/seq/1")
            if self.type_code == 2:
                pass
                self.digest = self._io.read_bytes(self.len_entry - 18)

            if self.type_code == 2:
                pass
                self.physical_sector = self._io.read_u8be()

            if self.type_code == 2:
                pass
                self.first_logical_sector = self._io.read_u8be()

            if  ((self.type_code != 2) and (self.type_code != 255)) :
                pass
                self.body = self._io.read_bytes(self.len_entry - 2)



        def _fetch_instances(self):
            pass
            if self.type_code == 2:
                pass

            if self.type_code == 2:
                pass

            if self.type_code == 2:
                pass

            if  ((self.type_code != 2) and (self.type_code != 255)) :
                pass


        @property
        def entry_type(self):
            """The type byte resolved to the enum `entry_type` (END, HASH, NONE);
            an unassigned value stays a number. Evaluated on demand only.
            
            .. seealso::
               docs/format.md D4
            """
            if hasattr(self, '_m_entry_type'):
                return self._m_entry_type

            self._m_entry_type = KaitaiStream.resolve_enum(Qcow2Journal.EntryType, self.type_code)
            return getattr(self, '_m_entry_type', None)

        @property
        def has_dirty_padding(self):
            """True for an END whose padding holds a byte other than 0xFF. The
            writer writes only the END's header (D6), so such bytes come from a
            stray write; replay is not affected, a check reports them.
            """
            if hasattr(self, '_m_has_dirty_padding'):
                return self._m_has_dirty_padding

            self._m_has_dirty_padding =  ((self.type_code == 1) and (self.len_entry > 2) and (KaitaiStream.byte_array_min(self.body) != 255)) 
            return getattr(self, '_m_has_dirty_padding', None)

        @property
        def is_torn(self):
            """True for a NONE type under a size byte other than 0xFF: the writer
            writes the type byte of an entry last, so this is an entry whose
            write was interrupted. Replay stops here (D5).
            
            .. seealso::
               docs/format.md D5
            """
            if hasattr(self, '_m_is_torn'):
                return self._m_is_torn

            self._m_is_torn =  ((self.type_code == 255) and (self.len_entry != 255)) 
            return getattr(self, '_m_is_torn', None)

        @property
        def is_unassigned(self):
            """True for a type the spec does not assign (0x00, 0x03-0xFE): replay
            yields it as a raw entry, a strict check reports it (D4).
            """
            if hasattr(self, '_m_is_unassigned'):
                return self._m_is_unassigned

            self._m_is_unassigned =  ((self.type_code != 1) and (self.type_code != 2) and (self.type_code != 255)) 
            return getattr(self, '_m_is_unassigned', None)

        @property
        def len_body(self):
            """Payload length n (D3)."""
            if hasattr(self, '_m_len_body'):
                return self._m_len_body

            self._m_len_body = self.len_entry - 2
            return getattr(self, '_m_len_body', None)


    @property
    def has_dirty_tail(self):
        """True when some byte after the point where replay ends is not 0xFF: a
        torn or stray write. Replay ignores these bytes; a check reports them.
        
        .. seealso::
           docs/format.md D5
        """
        if hasattr(self, '_m_has_dirty_tail'):
            return self._m_has_dirty_tail

        self._m_has_dirty_tail =  ((self.clusters[-1].has_dirty_tail) or ( ((len(self.unreplayed) > 0) and (KaitaiStream.byte_array_min(self.unreplayed) != 255)) )) 
        return getattr(self, '_m_has_dirty_tail', None)

    @property
    def is_full(self):
        """True when no entry can be appended (D6): every cluster of the area is
        closed (replay ended after the last cluster, D7), or the tail is in the
        last cluster with fewer than 4 bytes left, too few for the smallest
        entry (2 bytes) plus the END header that must still fit after it.
        """
        if hasattr(self, '_m_is_full'):
            return self._m_is_full

        self._m_is_full =  ((self.clusters[-1].is_closed) or ( ((len(self.clusters) == self.num_clusters) and (self.clusters[-1].ofs_tail > 4096 - 4)) )) 
        return getattr(self, '_m_is_full', None)

    @property
    def is_torn(self):
        """True when replay stopped at a torn write (see `entry.is_torn`)."""
        if hasattr(self, '_m_is_torn'):
            return self._m_is_torn

        self._m_is_torn = self.clusters[-1].is_torn
        return getattr(self, '_m_is_torn', None)

    @property
    def num_clusters(self):
        """Number of journal clusters in the area (N)."""
        if hasattr(self, '_m_num_clusters'):
            return self._m_num_clusters

        self._m_num_clusters = self._io.size() // 4096
        return getattr(self, '_m_num_clusters', None)

    @property
    def num_clusters_replayed(self):
        """Number of clusters replay visits, the open tail cluster included."""
        if hasattr(self, '_m_num_clusters_replayed'):
            return self._m_num_clusters_replayed

        self._m_num_clusters_replayed = len(self.clusters)
        return getattr(self, '_m_num_clusters_replayed', None)

    @property
    def ofs_tail(self):
        """Offset in the area of the NONE where replay stops: where the next
        entry goes if it fits in that cluster (D6). The area length when every
        cluster is closed.
        """
        if hasattr(self, '_m_ofs_tail'):
            return self._m_ofs_tail

        self._m_ofs_tail = (len(self.clusters) - 1) * 4096 + self.clusters[-1].ofs_tail
        return getattr(self, '_m_ofs_tail', None)



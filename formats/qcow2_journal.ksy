meta:
  id: qcow2_journal
  title: QCOW2 deduplication metadata journal (RFC V8)
  application: QEMU qcow2 deduplication (RFC series, never merged)
  file-extension: qjournal
  license: CC0-1.0
  ks-version: '0.11'
  endian: be
doc: |
  The metadata journal proposed for QCOW2 images by the deduplication RFC
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
doc-ref:
  - '[RFC V8 01/24] qcow2: Add journal specification (docs/specs/qcow2.txt "== Journal =="), Benoît Canet, qemu-devel, 2013-06-20; quoted in docs/format.md section 2'
  - 'docs/format.md D1-D25 (the qjournal project reading of the spec)'
seq:
  - id: area_length_rule
    size: 0
    valid:
      expr: _io.size > 0 and _io.size % 4096 == 0
    doc: |
      Zero-length marker that carries the area rule of D1: the area is
      N >= 1 journal clusters of 4096 bytes, so its length is a non-zero
      multiple of 4096. An input of any other length fails here, at offset
      0, before any cluster is read.
    doc-ref: docs/format.md D1
  - id: clusters
    type: cluster
    size: 4096
    repeat: until
    repeat-until: not _.is_closed or _io.eof
    doc: |
      The journal clusters replay visits (D7): every closed cluster from the
      start of the area, then the first cluster that is not closed (the open
      tail, or an empty cluster), if there is one. A full journal has every
      cluster of the area here, all closed.
    doc-ref: docs/format.md D5, D7
  - id: unreplayed
    size-eos: true
    doc: |
      The clusters after the one where replay ended. In a healthy journal
      every byte is 0xFF; anything else is a dirty tail (see
      `has_dirty_tail`). Kept raw: these bytes are never parsed as entries.
    doc-ref: docs/format.md D5
instances:
  num_clusters:
    value: _io.size / 4096
    doc: Number of journal clusters in the area (N).
  num_clusters_replayed:
    value: clusters.size
    doc: Number of clusters replay visits, the open tail cluster included.
  ofs_tail:
    value: (clusters.size - 1) * 4096 + clusters.last.ofs_tail
    doc: |
      Offset in the area of the NONE where replay stops: where the next
      entry goes if it fits in that cluster (D6). The area length when every
      cluster is closed.
  is_full:
    value: >-
      clusters.last.is_closed
      or (clusters.size == num_clusters and clusters.last.ofs_tail > 4096 - 4)
    doc: |
      True when no entry can be appended (D6): every cluster of the area is
      closed (replay ended after the last cluster, D7), or the tail is in the
      last cluster with fewer than 4 bytes left, too few for the smallest
      entry (2 bytes) plus the END header that must still fit after it.
  is_torn:
    value: clusters.last.is_torn
    doc: True when replay stopped at a torn write (see `entry.is_torn`).
  has_dirty_tail:
    value: >-
      clusters.last.has_dirty_tail
      or (unreplayed.length > 0 and unreplayed.min != 0xff)
    doc: |
      True when some byte after the point where replay ends is not 0xFF: a
      torn or stray write. Replay ignores these bytes; a check reports them.
    doc-ref: docs/format.md D5
types:
  cluster:
    -webide-representation: '{num_regular:dec} entries, closed={is_closed}'
    doc: |
      One 4096-byte journal cluster, parsed up to its END (a closed cluster)
      or up to the NONE where replay stops (an open or empty cluster). Parsed
      from its own 4096-byte substream: entries never span two clusters, so a
      cluster can be read on its own, without the rest of the area.
    doc-ref: docs/format.md D5
    seq:
      - id: entries
        type: entry
        repeat: until
        repeat-until: _.type_code == 0x01 or _.type_code == 0xff
        doc: |
          Regular entries, then the END (0x01) that closes the cluster or the
          NONE (0xFF) where replay stops. A regular entry always leaves at
          least two bytes before the boundary (see `entry.type_code`), so the
          list never runs past the end of the cluster.
        doc-ref: docs/format.md D5, D7
      - id: tail
        size-eos: true
        doc: |
          In an open cluster, the bytes after the NONE header: all 0xFF in a
          healthy journal. Empty in a closed cluster (the END reaches the
          boundary).
        doc-ref: docs/format.md D5
    instances:
      terminator:
        value: entries.last
        doc: The END or NONE entry that ends this cluster's entries.
      num_regular:
        value: entries.size - 1
        doc: Number of regular entries (every type but END and NONE).
      is_closed:
        value: terminator.type_code == 0x01
        doc: True when an END closes the cluster and replay goes on to the next one.
      ofs_tail:
        value: '_io.size - (is_closed ? 0 : tail.length + 2)'
        doc: |
          Offset, in the cluster, of the NONE where replay stops (where the
          next entry would go); 4096 for a closed cluster.
      is_torn:
        value: terminator.is_torn
        doc: True when the NONE that ends replay here is a torn write.
      has_dirty_tail:
        value: not is_closed and tail.length > 0 and tail.min != 0xff
        doc: True when a byte after the NONE header of an open cluster is not 0xFF.
  entry:
    -webide-representation: '{entry_type} {len_entry:dec} B {digest:hex} {physical_sector:dec}'
    doc: |
      One journal entry: a size byte, a type byte, then `len_entry - 2`
      payload bytes. Validation follows D3 and D5; each failure is corruption
      at this entry's offset (docs/format.md D13 names which rule an entry
      that breaks several is reported under).

      The type byte is `type_code`, a number; the `entry_type` instance is the
      same byte resolved to the enum. A HASH entry's payload is its record:
      `digest`, `physical_sector`, `first_logical_sector` (D8). An entry is
      always read from a cluster's 4096-byte stream (the `cluster` type), so
      the room left in the cluster is `4096 - _io.pos`.
    doc-ref:
      - 'RFC V8 journal specification, "QCOW2 journal entry" (docs/format.md section 2)'
      - docs/format.md D3, D5
    seq:
      - id: len_entry
        -orig-id: size
        type: u1
        valid:
          min: 2
        doc: |
          Size of the whole entry in bytes, its two header bytes included
          (size = 2 + n, D3). 0 and 1 are never valid, whatever the type: the
          area is corrupt here (D11), and an area of 0x00 bytes was never reset
          (D2). 0xFF marks a NONE entry; under a NONE type a size of 2 to 254 is
          a torn write (D14).
        doc-ref: docs/format.md D3
      - id: type_code
        -orig-id: type
        type: u1
        valid:
          expr: >-
            (_ == 0x02 and len_entry >= 19 and len_entry <= 254
            and len_entry <= 4096 - _io.pos)
            or _ == 0xff
            or (_ == 0x01 and len_entry == 4096 - _io.pos + 2)
            or (_ != 0x01 and _ != 0x02 and len_entry <= 254
            and len_entry <= 4096 - _io.pos)
        doc: |
          Type of the entry, the type byte as a number: 0x01 END, 0x02 HASH,
          0xFF NONE, any other value unassigned (see the enum `entry_type`,
          and the `entry_type` instance for this byte resolved to it).

          The size rules of D3 and D5 are checked here, where size, type and
          position are all known (`4096 - _io.pos + 2` is the room from
          this entry's first byte to the cluster boundary):
          - NONE: any size of at least 2 (a size other than 0xFF is a torn
            write, see `is_torn`);
          - END: the size reaches the cluster boundary exactly, so it is 2 to
            255 (an END that starts 255 bytes before the boundary has the
            size byte 0xFF: see the erratum on `entry_type::end`);
          - any other type (a regular entry): size at most 254, and at
            least two bytes left after it for the next entry's header. This
            one rule rejects an entry that crosses the boundary, one that ends
            on the boundary with no END, one that leaves a single byte, and a
            size byte 0xFF under a regular type;
          - HASH: a payload of at least 17 bytes, so size >= 19 (D8).
        doc-ref: docs/format.md D4, D5, D6, D8
      - id: digest
        size: len_entry - 18
        if: type_code == 0x02
        doc: |
          HASH record (D8), first field: the hash digest of the deduplicated
          cluster, h = n - 16 = len_entry - 18 bytes (32 for SHA-256, the
          default, in a 50-byte entry). The record's three fields are the
          entry's payload, read in the entry itself.
        doc-ref: docs/format.md D8, D10
      - id: physical_sector
        type: u8
        if: type_code == 0x02
        doc: |
          HASH record (D8): the sector (512 bytes) where the cluster's data is
          stored in the image file, u64 big-endian.
        doc-ref: docs/format.md D8
      - id: first_logical_sector
        type: u8
        if: type_code == 0x02
        doc: |
          HASH record (D8): the first guest-visible (logical) sector that maps
          to this data, u64 big-endian. It ends the entry: the digest and the
          two sectors fill the payload exactly.
        doc-ref: docs/format.md D8
      - id: body
        size: len_entry - 2
        if: type_code != 0x02 and type_code != 0xff
        doc: |
          The n = len_entry - 2 payload bytes of an entry other than HASH:
          for END the padding up to the boundary (the writer leaves it 0xFF,
          see `has_dirty_padding`); raw bytes for an unassigned type, which a
          reader steps over. Absent for HASH (its payload is the record
          above) and for NONE, whose size byte is not a length.
        doc-ref: docs/format.md D3, D4, D6
    instances:
      entry_type:
        value: type_code
        enum: entry_type
        doc: |
          The type byte resolved to the enum `entry_type` (END, HASH, NONE);
          an unassigned value stays a number. Evaluated on demand only.
        doc-ref: docs/format.md D4
      len_body:
        value: len_entry - 2
        doc: Payload length n (D3).
      is_unassigned:
        value: type_code != 0x01 and type_code != 0x02 and type_code != 0xff
        doc: |
          True for a type the spec does not assign (0x00, 0x03-0xFE): replay
          yields it as a raw entry, a strict check reports it (D4).
      is_torn:
        value: type_code == 0xff and len_entry != 0xff
        doc: |
          True for a NONE type under a size byte other than 0xFF: the writer
          writes the type byte of an entry last, so this is an entry whose
          write was interrupted. Replay stops here (D5).
        doc-ref: docs/format.md D5
      has_dirty_padding:
        value: >-
          type_code == 0x01 and len_entry > 2
          and body.min != 0xff
        doc: |
          True for an END whose padding holds a byte other than 0xFF. The
          writer writes only the END's header (D6), so such bytes come from a
          stray write; replay is not affected, a check reports them.
enums:
  entry_type:
    0x01:
      id: end
      -orig-id: TYPE_END
      doc: |
        Closes a journal cluster; replay continues at the next cluster. Its
        size reaches exactly the next cluster boundary (4096 - offset in the
        cluster), so it is 2 to 255.

        Erratum (D6): the spec says "the only cases where size > 254 are none
        entries where size = 255", but a writer that meets exactly 255 free
        bytes with an entry of 254 must close the cluster with an END of size
        255. This definition reads the type byte, not the size, as what marks
        NONE, and accepts an END of size 255.
      doc-ref: docs/format.md D5, D6
    0x02:
      id: hash
      -orig-id: TYPE_HASH
      doc: |
        One deduplication record (D8): the entry's payload is the fields
        `digest`, `physical_sector` and `first_logical_sector`.
      doc-ref: docs/format.md D8
    0xff:
      id: none
      -orig-id: TYPE_NONE
      doc: |
        An unwritten byte of a reset area (every byte of a reset area is
        0xFF): replay stops here. A healthy NONE has size byte 0xFF too.
      doc-ref: docs/format.md D2, D7

meta:
  id: qcow2
  title: QEMU copy-on-write disk image, versions 2 and 3 (qcow2)
  application: QEMU
  file-extension: qcow2
  license: CC0-1.0
  ks-version: '0.11'
  encoding: UTF-8
  endian: be
  bit-endian: be
doc: |
  The qcow2 disk image format of QEMU, versions 2 and 3. The file is made of
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
doc-ref:
  - 'QEMU docs/interop/qcow2.txt (the qcow2 image format specification)'
seq:
  - id: header
    type: header
    doc: |
      The image header, at the start of the first cluster: 72 bytes in
      version 2, header_length bytes (at least 104) in version 3.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Header =="'
  - id: header_extension_area
    size: header.len_header_extension_area
    type: header_extension_area
    doc: |
      The header extensions, read from their own substream: from the end of
      the header to the backing file name when there is one, else to the end
      of the first cluster (the area QEMU reads extensions from).
    doc-ref: 'QEMU docs/interop/qcow2.txt "=== Header extensions ==="'
instances:
  backing_file_name:
    pos: header.ofs_backing_file
    size: header.len_backing_file
    type: str
    if: header.ofs_backing_file != 0
    doc: |
      Name of the backing file (not null terminated), usually in the first
      cluster after the header extensions. Absent when the image has no
      backing file. Read as UTF-8.
  l1_table:
    pos: header.ofs_l1_table
    type: l1_table(header.num_l1_entries)
    doc: |
      The active L1 table: header.num_l1_entries entries at
      header.ofs_l1_table. Each allocated entry's `l2_table` instance is the
      L2 table it points at.
  refcount_table:
    pos: header.ofs_refcount_table
    size: header.num_refcount_table_clusters * header.cluster_size
    type: refcount_table
    doc: |
      The refcount table: header.num_refcount_table_clusters contiguous
      clusters of refcount table entries.
  snapshots:
    pos: header.ofs_snapshots
    type: snapshot(_index)
    repeat: expr
    repeat-expr: header.num_snapshots
    doc: |
      The snapshot table: header.num_snapshots internal snapshots, each with
      its own L1 table.
  guest_clusters:
    pos: 0
    type: guest_cluster(_index)
    repeat: expr
    repeat-expr: header.num_guest_clusters
    doc: |
      Every guest cluster of the virtual disk, in order: item i is guest
      cluster i (guest offsets i * cluster_size onwards). Each item reads
      nothing until its `l1_entry` or `l2_entry` is asked for.
  host_clusters:
    pos: 0
    type: host_cluster(_index)
    repeat: expr
    repeat-expr: (_io.size + header.cluster_size - 1) / header.cluster_size
    doc: |
      Every host cluster of the image file, in order: item i is the cluster
      at offset i * cluster_size. Each item reads nothing until its
      `refcount_table_entry` or `refcount` is asked for.
types:
  header:
    -webide-representation: 'v{version:dec}, {cluster_size:dec} B clusters, {len_virtual_disk:dec} B disk'
    doc: |
      The qcow2 header. Versions 2 and 3 share the first 72 bytes; version 3
      adds the feature bitmaps, refcount_order and header_length, then
      optional additional fields up to header_length (compression_type in
      this version of the spec).
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Header =="'
    seq:
      - id: magic
        contents: [0x51, 0x46, 0x49, 0xfb]
        doc: QCOW magic string "QFI\xfb".
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 0-3: magic'
      - id: version
        type: u4
        valid:
          any-of: [2, 3]
        doc: Version number of the format; valid values are 2 and 3.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 4-7: version'
      - id: ofs_backing_file
        -orig-id: backing_file_offset
        type: u8
        doc: |
          Offset in the image file of the backing file name (see
          `backing_file_name`), or 0 if the image has no backing file.
          Backing files are incompatible with raw external data files
          (autoclear feature bit 1).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 8-15: backing_file_offset'
      - id: len_backing_file
        -orig-id: backing_file_size
        type: u4
        valid:
          expr: ofs_backing_file == 0 or _ <= 1023
        doc: |
          Length of the backing file name in bytes. Must not be longer than
          1023 bytes; undefined (and not checked) when the image has no
          backing file.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 16-19: backing_file_size'
      - id: cluster_bits
        type: u4
        valid:
          min: 9
          max: 21
        doc: |
          Number of bits of an offset within a cluster: the cluster size is
          1 << cluster_bits. The spec requires at least 9 (512-byte
          clusters); QEMU cannot open images with clusters larger than 2 MiB,
          so this definition accepts 9 to 21.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 20-23: cluster_bits'
      - id: len_virtual_disk
        -orig-id: size
        type: u8
        doc: Virtual disk size in bytes (what the guest sees).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 24-31: size'
      - id: crypt_method
        type: u4
        enum: crypt_method
        doc: How guest data is encrypted, if at all (see the enum).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 32-35: crypt_method'
      - id: num_l1_entries
        -orig-id: l1_size
        type: u4
        doc: Number of entries in the active L1 table.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 36-39: l1_size'
      - id: ofs_l1_table
        -orig-id: l1_table_offset
        type: u8
        valid:
          expr: _ % cluster_size == 0
        doc: |
          Offset in the image file of the active L1 table. Must be aligned to
          a cluster boundary.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 40-47: l1_table_offset'
      - id: ofs_refcount_table
        -orig-id: refcount_table_offset
        type: u8
        valid:
          expr: _ % cluster_size == 0
        doc: |
          Offset in the image file of the refcount table. Must be aligned to a
          cluster boundary.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 48-55: refcount_table_offset'
      - id: num_refcount_table_clusters
        -orig-id: refcount_table_clusters
        type: u4
        doc: Number of clusters the refcount table occupies.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 56-59: refcount_table_clusters'
      - id: num_snapshots
        -orig-id: nb_snapshots
        type: u4
        doc: Number of internal snapshots in the image.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 60-63: nb_snapshots'
      - id: ofs_snapshots
        -orig-id: snapshots_offset
        type: u8
        valid:
          expr: _ % cluster_size == 0
        doc: |
          Offset in the image file of the snapshot table. Must be aligned to a
          cluster boundary.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 64-71: snapshots_offset'
      - id: incompatible_features
        type: incompatible_features
        if: version >= 3
        doc: |
          Version 3: bitmask of incompatible features. An implementation must
          fail to open an image with an unknown bit set: this definition
          fails the parse on one (see the type).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 72-79: incompatible_features'
      - id: compatible_features
        type: compatible_features
        if: version >= 3
        doc: |
          Version 3: bitmask of compatible features; unknown bits may be
          ignored.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 80-87: compatible_features'
      - id: autoclear_features
        type: autoclear_features
        if: version >= 3
        doc: |
          Version 3: bitmask of auto-clear features. A writer must clear the
          bits it does not know before it writes to the image.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 88-95: autoclear_features'
      - id: refcount_order
        type: u4
        if: version >= 3
        valid:
          max: 6
        doc: |
          Version 3: width of a refcount block entry, refcount_bits = 1 <<
          refcount_order; at most 6 (64-bit refcounts). Version 2 images
          always use order 4 (16-bit refcounts): see `refcount_bits`.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 96-99: refcount_order'
      - id: len_header
        -orig-id: header_length
        type: u4
        if: version >= 3
        valid:
          expr: >-
            _ >= 104 and _ % 8 == 0 and _ <= cluster_size
            and (not incompatible_features.has_compression_type or _ > 104)
        doc: |
          Version 3: length of the header structure in bytes; at least 104
          and a multiple of 8. It must leave room for compression_type (byte
          104) when the compression type bit is set. The header is part of
          the first cluster, so it is at most one cluster long. Version 2
          headers are 72 bytes: see `ofs_header_extensions`.
        doc-ref:
          - 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 100-103: header_length'
          - 'QEMU docs/interop/qcow2.txt "== Header ==", byte 104: compression_type'
      - id: compression_type
        type: u1
        enum: compression_type
        if: version >= 3 and len_header > 104
        valid:
          expr: >-
            incompatible_features.has_compression_type
            ? _ != compression_type::zlib
            : _ == compression_type::zlib
        doc: |
          Version 3, when header_length reaches past byte 104: the compression
          method of every compressed cluster of the image. Must be non-zero
          if the incompatible compression type bit is set, zero otherwise.
          See `compression` for the method in use whatever the header length.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Additional fields (version 3 and higher) ===", byte 104: compression_type'
      - id: padding
        size: len_header - 105
        if: version >= 3 and len_header > 105
        doc: |
          Version 3: the bytes after compression_type up to header_length:
          the header padding, which must be zero, or additional fields of a
          later version of the spec, which an implementation may ignore. Kept
          raw and not checked, because a later field would not be zero.
        doc-ref:
          - 'QEMU docs/interop/qcow2.txt "=== Header padding ==="'
          - 'QEMU docs/interop/qcow2.txt "=== Additional fields (version 3 and higher) ==="'
    instances:
      cluster_size:
        value: 1 << cluster_bits
        doc: Size of a cluster in bytes (512 B to 2 MiB).
      ofs_header_extensions:
        value: 'version >= 3 ? len_header : 72'
        doc: |
          Offset of the first header extension: header_length in version 3,
          72 (the header's fixed length) in version 2.
      ofs_end_header_extensions:
        value: 'ofs_backing_file != 0 ? ofs_backing_file : cluster_size'
        doc: |
          Where the header extension area ends: at the backing file name when
          there is one (it follows the extensions), else at the end of the
          first cluster.
      len_header_extension_area:
        value: >-
          ofs_end_header_extensions > ofs_header_extensions
          ? ofs_end_header_extensions - ofs_header_extensions : 0
        doc: Size of the header extension area (0 if the backing file name overlaps the header).
      refcount_bits:
        value: '1 << (version >= 3 ? refcount_order : 4)'
        doc: Width of a refcount block entry in bits (16 in version 2).
      num_refcount_table_entries:
        value: num_refcount_table_clusters * (cluster_size / 8)
        doc: Number of 8-byte entries in the refcount table.
      num_refcount_block_entries:
        value: cluster_size * 8 / refcount_bits
        doc: Number of refcounts in one refcount block (one cluster).
      is_dirty:
        value: version >= 3 and incompatible_features.is_dirty
        doc: True when the dirty bit is set (refcounts may be inconsistent).
      is_corrupt:
        value: version >= 3 and incompatible_features.is_corrupt
        doc: True when the corrupt bit is set.
      has_external_data_file:
        value: version >= 3 and incompatible_features.has_external_data_file
        doc: |
          True when guest clusters are stored in an external data file (its
          name may be in a header extension); host offsets in L2 entries are
          then offsets in that file.
      has_extended_l2:
        value: version >= 3 and incompatible_features.has_extended_l2
        doc: True when L2 entries are 128-bit extended entries with subclusters.
      compression:
        value: 'version >= 3 and len_header > 104 ? compression_type.to_i : 0'
        enum: compression_type
        doc: |
          The compression method of compressed clusters: compression_type
          when the header has the field, else zlib (deflate), which is what
          an absent field means.
      len_l2_entry:
        value: 'has_extended_l2 ? 16 : 8'
        doc: Size of an L2 table entry in bytes (16 with extended L2 entries).
      num_l2_entries:
        value: cluster_size / len_l2_entry
        doc: Number of entries in one L2 table (one cluster).
      len_subcluster:
        value: 'has_extended_l2 ? cluster_size / 32 : cluster_size'
        doc: |
          Size of a subcluster: a 32nd of a cluster with extended L2 entries;
          without them the unit of allocation is the cluster itself.
      num_guest_clusters:
        value: (len_virtual_disk + cluster_size - 1) / cluster_size
        doc: Number of guest clusters of the virtual disk (the last may be partial).
      num_compressed_offset_bits:
        value: 62 - (cluster_bits - 8)
        doc: |
          x = 62 - (cluster_bits - 8): the width of the host offset field of
          a compressed cluster descriptor; bits x to 61 hold the additional
          sector count.
  incompatible_features:
    -webide-representation: 'dirty={is_dirty} corrupt={is_corrupt} data_file={has_external_data_file} compression={has_compression_type} extended_l2={has_extended_l2}'
    doc: |
      The incompatible feature bitmask (u8), bit 63 first. Bits 5 to 63 are
      reserved; an implementation must fail to open an image in which an
      unknown bit is set, since it would misread the image, so the parse
      fails on a set reserved bit.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 72-79: incompatible_features'
    seq:
      - id: reserved_hi
        type: b32
        doc: Bits 32-63, reserved (must be unset for an image to be opened).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", incompatible_features, bits 5-63'
      - id: reserved_lo
        type: b27
        doc: Bits 5-31, reserved (must be unset for an image to be opened).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", incompatible_features, bits 5-63'
      - id: has_extended_l2
        type: b1
        doc: |
          Bit 4, Extended L2 Entries: L2 entries are 128 bits, with a
          subcluster allocation bitmap. The image's cluster_bits must then be
          at least 14 (16 KiB clusters).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", incompatible_features, bit 4'
      - id: has_compression_type
        type: b1
        doc: |
          Bit 3, compression type bit: compressed clusters use a
          non-default method, given by the header's compression_type (which
          must then be present and non-zero).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", incompatible_features, bit 3'
      - id: has_external_data_file
        type: b1
        doc: |
          Bit 2, external data file bit: guest clusters are stored in an
          external data file, are not refcounted, and the offset in a
          standard cluster descriptor must equal the guest offset; no
          compressed clusters, no internal snapshots.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", incompatible_features, bit 2'
      - id: is_corrupt
        type: b1
        doc: |
          Bit 1, corrupt bit: any data structure may be corrupt; the image
          must not be written to (unless to regain consistency).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", incompatible_features, bit 1'
      - id: is_dirty
        type: b1
        doc: |
          Bit 0, dirty bit: refcounts may be inconsistent; the L1/L2 tables
          must be scanned to repair them before the image is used.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", incompatible_features, bit 0'
      - id: reserved_rule
        size: 0
        valid:
          expr: reserved_hi == 0 and reserved_lo == 0
        doc: |
          No unknown incompatible bit (5-63) is set: an implementation must
          fail to open such an image. Zero-length marker placed after the entry's last bit: a rule checked
          there fails with no byte half read (the JavaScript runtime, unlike
          Python's, keeps a half-read byte's bits across a seek, so a failure
          in the middle of the bit fields would spoil the next entry it reads).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", incompatible_features'
      - id: extended_l2_rule
        size: 0
        valid:
          expr: not has_extended_l2 or _parent.cluster_bits >= 14
        doc: |
          With extended L2 entries, cluster_bits must be at least 14 (16 KiB
          clusters). Checked after the bitmask, like `reserved_rule`.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 20-23: cluster_bits'
  compatible_features:
    -webide-representation: 'lazy_refcounts={has_lazy_refcounts}'
    doc: |
      The compatible feature bitmask (u8), bit 63 first. Unknown bits may be
      safely ignored.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 80-87: compatible_features'
    seq:
      - id: reserved_hi
        type: b32
        doc: Bits 32-63, reserved (set to 0).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", compatible_features, bits 1-63'
      - id: reserved_lo
        type: b31
        doc: Bits 1-31, reserved (set to 0).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", compatible_features, bits 1-63'
      - id: has_lazy_refcounts
        type: b1
        doc: |
          Bit 0, lazy refcounts bit: refcount updates may be postponed (the
          image is marked dirty meanwhile).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", compatible_features, bit 0'
  autoclear_features:
    -webide-representation: 'bitmaps={has_bitmaps} raw_data={has_raw_external_data}'
    doc: |
      The auto-clear feature bitmask (u8), bit 63 first. A writer that does
      not know a set bit clears it before writing to the image.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", bytes 88-95: autoclear_features'
    seq:
      - id: reserved_hi
        type: b32
        doc: Bits 32-63, reserved (set to 0).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", autoclear_features, bits 2-63'
      - id: reserved_lo
        type: b30
        doc: Bits 2-31, reserved (set to 0).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", autoclear_features, bits 2-63'
      - id: has_raw_external_data
        type: b1
        doc: |
          Bit 1, raw external data bit: the external data file is a
          consistent raw image on its own. May only be set together with the
          external data file bit (the spec's text calls that "incompatible
          feature bit 1"; it is bit 2). Conflicts with backing files.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", autoclear_features, bit 1'
      - id: has_bitmaps
        type: b1
        doc: |
          Bit 0, bitmaps extension bit: the bitmaps extension data is
          consistent. If the extension is present and this bit is unset, the
          bitmaps must be considered inconsistent.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Header ==", autoclear_features, bit 0'
  header_extension_area:
    -webide-representation: 'header extensions'
    doc: |
      The header extensions, one after the other, up to the end marker (type
      0) or the end of the area. Extensions of unknown types are kept as raw
      bytes.
    doc-ref: 'QEMU docs/interop/qcow2.txt "=== Header extensions ==="'
    seq:
      - id: extensions
        type: header_extension
        if: not _io.eof
        repeat: until
        repeat-until: _.extension_type == header_extension_type::end or _io.eof
        doc: |
          The extensions in file order; the last is the end marker unless the
          area is full. Each type but unknown ones appears at most once.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Header extensions ==="'
  header_extension:
    -webide-representation: '{extension_type} {len_data:dec} B'
    doc: |
      One header extension: its type, the length of its data, the data, and
      padding up to the next multiple of 8 bytes.
    doc-ref: 'QEMU docs/interop/qcow2.txt "=== Header extensions ==="'
    seq:
      - id: extension_type
        type: u4
        enum: header_extension_type
        doc: Header extension type (see the enum); unknown types can be safely ignored.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Header extensions ===", bytes 0-3'
      - id: len_data
        type: u4
        doc: Length of the header extension data in bytes, padding excluded.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Header extensions ===", bytes 4-7'
      - id: data
        size: len_data
        type:
          switch-on: extension_type
          cases:
            'header_extension_type::backing_file_format': string_extension
            'header_extension_type::feature_name_table': feature_name_table
            'header_extension_type::bitmaps': bitmaps_extension
            'header_extension_type::full_disk_encryption': full_disk_encryption_header_pointer
            'header_extension_type::external_data_file': string_extension
        doc: |
          The extension data, parsed by type; the data of an unknown type
          (and the empty data of the end marker) stays raw bytes.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Header extensions ===", bytes 8-n'
      - id: padding
        size: (8 - len_data % 8) % 8
        doc: Padding up to the next multiple of 8 bytes.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Header extensions ===", bytes n-m'
  string_extension:
    -webide-representation: '{value}'
    doc: |
      A header extension that is a single string (backing file format name,
      external data file name): the extension length is the string length,
      and the string is not '\0' terminated.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== String header extensions =="'
    seq:
      - id: value
        type: str
        size-eos: true
        doc: The string (UTF-8), e.g. "qcow2" for a backing file format.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== String header extensions =="'
  feature_name_table:
    -webide-representation: 'feature names'
    doc: |
      Names for the features of the three feature bitmaps, so that a reader
      that does not know a feature can name it in an error message. The
      number of entries follows from the extension length.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Feature name table =="'
    seq:
      - id: entries
        type: feature_name
        repeat: eos
        doc: The 48-byte entries.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Feature name table =="'
  feature_name:
    -webide-representation: '{feature_type} bit {bit_number:dec}: {name}'
    doc: One feature name table entry.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Feature name table =="'
    seq:
      - id: feature_type
        type: u1
        enum: feature_type
        doc: Which feature bitmap the bit is in.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Feature name table ==", byte 0'
      - id: bit_number
        type: u1
        valid:
          max: 63
        doc: Bit number within the selected feature bitmap (0-63).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Feature name table ==", byte 1'
      - id: name
        type: strz
        size: 46
        doc: |
          Feature name, padded with zeros; not null terminated if it is 46
          bytes long.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Feature name table ==", bytes 2-47'
  bitmaps_extension:
    -webide-representation: '{num_bitmaps:dec} bitmaps'
    doc: |
      Where the bitmap directory is. The bitmaps are consistent only if the
      autoclear bitmaps bit is set.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Bitmaps extension =="'
    seq:
      - id: num_bitmaps
        -orig-id: nb_bitmaps
        type: u4
        valid:
          min: 1
        doc: Number of bitmaps in the image; must be at least 1.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Bitmaps extension ==", bytes 0-3: nb_bitmaps'
      - id: reserved
        type: u4
        valid: 0
        doc: Reserved, must be zero.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Bitmaps extension ==", bytes 4-7'
      - id: len_bitmap_directory
        -orig-id: bitmap_directory_size
        type: u8
        doc: Size of the bitmap directory in bytes (all its entries).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Bitmaps extension ==", bytes 8-15: bitmap_directory_size'
      - id: ofs_bitmap_directory
        -orig-id: bitmap_directory_offset
        type: u8
        valid:
          expr: _ % _root.header.cluster_size == 0
        doc: |
          Offset in the image file of the bitmap directory. Must be aligned to
          a cluster boundary.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Bitmaps extension ==", bytes 16-23: bitmap_directory_offset'
    instances:
      bitmap_directory:
        io: _root._io
        pos: ofs_bitmap_directory
        size: len_bitmap_directory
        type: bitmap_directory
        doc: The bitmap directory (lazy).
  bitmap_directory:
    -webide-representation: 'bitmap directory'
    doc: The bitmap directory, num_bitmaps entries of variable length.
    doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ==="'
    seq:
      - id: entries
        type: bitmap_directory_entry
        repeat: expr
        repeat-expr: _parent.num_bitmaps
        doc: One entry per bitmap.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ==="'
  bitmap_directory_entry:
    -webide-representation: '{name} {bitmap_type} granularity 2^{granularity_bits:dec}'
    doc: One bitmap directory entry, padded to a multiple of 8 bytes.
    doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ==="'
    seq:
      - id: ofs_bitmap_table
        -orig-id: bitmap_table_offset
        type: u8
        valid:
          expr: _ % _root.header.cluster_size == 0
        doc: |
          Offset in the image file of the bitmap table. Must be aligned to a
          cluster boundary.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", bytes 0-7: bitmap_table_offset'
      - id: num_bitmap_table_entries
        -orig-id: bitmap_table_size
        type: u4
        doc: Number of entries in the bitmap table.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", bytes 8-11: bitmap_table_size'
      - id: flags
        type: bitmap_flags
        doc: The bitmap's flags.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", bytes 12-15: flags'
      - id: bitmap_type
        -orig-id: type
        type: u1
        enum: bitmap_type
        doc: The sort of the bitmap; 1 (dirty tracking) is the only one defined.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", byte 16: type'
      - id: granularity_bits
        type: u1
        valid:
          max: 63
        doc: |
          A bit of the bitmap covers 1 << granularity_bits bytes of the
          virtual disk. Valid values: 0-63 (QEMU supports 9-31).
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", byte 17: granularity_bits'
      - id: len_name
        -orig-id: name_size
        type: u2
        valid:
          min: 1
        doc: Size of the bitmap name; must be non-zero.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", bytes 18-19: name_size'
      - id: len_extra_data
        -orig-id: extra_data_size
        type: u4
        doc: Size of type-specific extra data (none is defined; should be zero).
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", bytes 20-23: extra_data_size'
      - id: extra_data
        size: len_extra_data
        doc: Extra data for the bitmap, kept raw.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", extra_data'
      - id: name
        type: str
        size: len_name
        doc: The bitmap's name (not null terminated), unique in the image.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", name'
      - id: padding
        size: (8 - (24 + len_extra_data + len_name) % 8) % 8
        valid:
          expr: _.size == 0 or _.max == 0
        doc: Padding to a multiple of 8 bytes; all its bytes must be zero.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", padding'
    instances:
      bitmap_table:
        io: _root._io
        pos: ofs_bitmap_table
        type: bitmap_table_entry
        repeat: expr
        repeat-expr: num_bitmap_table_entries
        doc: The bitmap table (lazy), mapping bitmap data to host clusters.
  bitmap_flags:
    -webide-representation: 'in_use={is_in_use} auto={is_auto} extra_data_compatible={is_extra_data_compatible}'
    doc: The flags of a bitmap directory entry (u4), bit 31 first.
    doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", bytes 12-15: flags'
    seq:
      - id: reserved
        type: b29
        doc: Bits 3-31, reserved; must be 0 (see `reserved_rule`).
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", flags, bits 3-31'
      - id: is_extra_data_compatible
        type: b1
        doc: |
          Bit 2, extra_data_compatible: if the extra data is unknown, the
          bitmap may still be used (else it must not be).
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", flags, bit 2'
      - id: is_auto
        type: b1
        doc: |
          Bit 1, auto: the bitmap is enabled and must reflect every change of
          the virtual disk.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", flags, bit 1'
      - id: is_in_use
        type: b1
        doc: |
          Bit 0, in_use: the bitmap was not saved correctly and may be
          inconsistent.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", flags, bit 0'
      - id: reserved_rule
        size: 0
        valid:
          expr: reserved == 0
        doc: |
          Reserved bits 3-31 must be 0. Zero-length marker placed after the entry's last bit: a rule checked
          there fails with no byte half read (the JavaScript runtime, unlike
          Python's, keeps a half-read byte's bits across a seek, so a failure
          in the middle of the bit fields would spoil the next entry it reads).
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap directory ===", flags, bits 3-31'
  bitmap_table_entry:
    -webide-representation: '{ofs_bitmap_data:hex} all_ones={is_all_ones}'
    doc: |
      One bitmap table entry (u8), bit 63 first: the host cluster of one
      cluster of bitmap data, or how an unallocated one reads.
    doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap table ==="'
    seq:
      - id: reserved_hi
        type: b8
        doc: Bits 56-63, reserved; must be zero (see `reserved_rule`).
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap table ===", bits 56-63'
      - id: ofs_hi
        type: b24
        doc: Bits 32-55 of the host cluster offset.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap table ===", bits 9-55'
      - id: ofs_lo
        type: b23
        doc: |
          Bits 9-31 of the host cluster offset. The offset must be aligned to
          a cluster boundary (see `alignment_rule`).
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap table ===", bits 9-55'
      - id: reserved_lo
        type: b8
        doc: Bits 1-8, reserved; must be zero (see `reserved_rule`).
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap table ===", bits 1-8'
      - id: is_all_ones
        type: b1
        doc: |
          Bit 0: for an unallocated cluster (offset 0), 1 if it reads as all
          ones, 0 if all zeros. Must be zero when the offset is not (see
          `reserved_rule`).
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap table ===", bit 0'
      - id: reserved_rule
        size: 0
        valid:
          expr: reserved_hi == 0 and reserved_lo == 0 and (not is_all_ones or (ofs_hi == 0 and ofs_lo == 0))
        doc: |
          Bits 1-8 and 56-63 must be zero, and bit 0 too when the offset is
          not zero. Zero-length marker placed after the entry's last bit: a rule checked
          there fails with no byte half read (the JavaScript runtime, unlike
          Python's, keeps a half-read byte's bits across a seek, so a failure
          in the middle of the bit fields would spoil the next entry it reads).
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap table ==="'
      - id: alignment_rule
        size: 0
        valid:
          expr: ofs_lo % (_root.header.cluster_size / 512) == 0
        doc: The host cluster offset must be aligned to a cluster boundary.
        doc-ref: 'QEMU docs/interop/qcow2.txt "=== Bitmap table ===", bits 9-55'
    instances:
      ofs_bitmap_data:
        value: ofs_hi * 0x100000000 + ofs_lo * 512
        doc: Offset in the image file of this cluster of bitmap data, 0 if unallocated.
  full_disk_encryption_header_pointer:
    -webide-representation: '{ofs_encryption_header:hex}, {len_encryption_header:dec} B'
    doc: |
      Where the crypt method keeps its own header (present if, and only if,
      the crypt method needs one: LUKS). For LUKS it is a LUKS partition
      header and its key material.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Full disk encryption header pointer =="'
    seq:
      - id: ofs_encryption_header
        type: u8
        valid:
          expr: _ % _root.header.cluster_size == 0
        doc: |
          Offset in the image file of the encryption header. Must be aligned
          to a cluster boundary.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Full disk encryption header pointer ==", bytes 0-7'
      - id: len_encryption_header
        type: u8
        doc: |
          Length of the written encryption header in bytes (the space
          allocated for it is rounded up to whole clusters).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Full disk encryption header pointer ==", bytes 8-15'
    instances:
      encryption_header:
        io: _root._io
        pos: ofs_encryption_header
        size: len_encryption_header
        doc: The encryption header as raw bytes (lazy); for LUKS it starts with "LUKS\xba\xbe".
  l1_table:
    -webide-representation: '{num_entries:dec} entries'
    doc: |
      An L1 table: the active one (header.ofs_l1_table) or a snapshot's.
      Contiguous in the image file.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping =="'
    params:
      - id: num_entries
        type: u4
        doc: Number of entries (header.num_l1_entries, or the snapshot's).
    seq:
      - id: entries
        type: l1_entry
        repeat: expr
        repeat-expr: num_entries
        doc: Entry i covers guest clusters i * header.num_l2_entries onwards.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L1 table entry'
  l1_entry:
    -webide-representation: 'L2 table at {ofs_l2_table:hex}, copied={is_copied}'
    doc: One L1 table entry (u8), bit 63 first.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L1 table entry'
    seq:
      - id: is_copied
        type: b1
        doc: |
          Bit 63: 1 if the L2 table's refcount is exactly one, 0 if it is
          unused or requires COW. Only accurate in the active L1 table.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L1 table entry, bit 63'
      - id: reserved_hi
        type: b7
        doc: Bits 56-62, reserved (set to 0).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L1 table entry, bits 56-62'
      - id: ofs_hi
        type: b24
        doc: Bits 32-55 of the L2 table offset.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L1 table entry, bits 9-55'
      - id: ofs_lo
        type: b23
        doc: |
          Bits 9-31 of the L2 table offset. The offset must be aligned to a
          cluster boundary (see `alignment_rule`).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L1 table entry, bits 9-55'
      - id: reserved_lo
        type: b9
        doc: Bits 0-8, reserved (set to 0).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L1 table entry, bits 0-8'
      - id: alignment_rule
        size: 0
        valid:
          expr: ofs_lo % (_root.header.cluster_size / 512) == 0
        doc: |
          The L2 table offset must be aligned to a cluster boundary. Zero-length marker placed after the entry's last bit: a rule checked
          there fails with no byte half read (the JavaScript runtime, unlike
          Python's, keeps a half-read byte's bits across a seek, so a failure
          in the middle of the bit fields would spoil the next entry it reads).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L1 table entry, bits 9-55'
    instances:
      ofs_l2_table:
        value: ofs_hi * 0x100000000 + ofs_lo * 512
        doc: |
          Offset in the image file of the L2 table; 0 if the L2 table, and
          every cluster it would describe, is unallocated.
      is_allocated:
        value: ofs_l2_table != 0
        doc: True when the entry points at an L2 table.
      l2_table:
        io: _root._io
        pos: ofs_l2_table
        size: _root.header.cluster_size
        type: l2_table
        if: is_allocated
        doc: The L2 table this entry points at (lazy; absent when unallocated).
  l2_table:
    -webide-representation: 'L2 table'
    doc: An L2 table, exactly one cluster of header.num_l2_entries entries.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping =="'
    seq:
      - id: entries
        type: l2_entry
        repeat: expr
        repeat-expr: _root.header.num_l2_entries
        doc: |
          Entry j of the table under L1 entry i describes guest cluster
          i * header.num_l2_entries + j.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L2 table entry'
  l2_entry:
    -webide-representation: '{cluster_type} {ofs_host_cluster:hex} {ofs_compressed_data:hex}'
    doc: |
      One L2 table entry: 64 bits, bit 63 first, plus (with extended L2
      entries) a 64-bit subcluster allocation bitmap. Bits 0-61 are a cluster
      descriptor whose layout depends on bit 62: a standard cluster
      descriptor (host cluster offset, "reads as zeros" bit) or a compressed
      cluster descriptor (host offset and additional sector count, split at
      bit x = 62 - (cluster_bits - 8)). Only the fields of the layout in use
      are read; the instances give the meaning.
    doc-ref:
      - 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L2 table entry'
      - 'QEMU docs/interop/qcow2.txt "== Extended L2 Entries =="'
    seq:
      - id: is_copied
        type: b1
        doc: |
          Bit 63: 1 for a standard cluster whose refcount is exactly one; 0
          for clusters that are unused, compressed or require COW. Only
          accurate in L2 tables reachable from the active L1 table. With an
          external data file it is 1 for every allocated cluster.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L2 table entry, bit 63'
      - id: is_compressed
        type: b1
        doc: 'Bit 62: 0 for a standard cluster, 1 for a compressed cluster.'
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", L2 table entry, bit 62'
      - id: reserved_hi
        type: b6
        if: not is_compressed
        doc: Standard cluster descriptor, bits 56-61, reserved (set to 0).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", Standard Cluster Descriptor, bits 56-61'
      - id: ofs_hi
        type: b24
        if: not is_compressed
        doc: Standard cluster descriptor, bits 32-55 of the host cluster offset.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", Standard Cluster Descriptor, bits 9-55'
      - id: ofs_lo
        type: b23
        if: not is_compressed
        doc: |
          Standard cluster descriptor, bits 9-31 of the host cluster offset.
          The offset must be aligned to a cluster boundary (see
          `alignment_rule`).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", Standard Cluster Descriptor, bits 9-55'
      - id: reserved_lo
        type: b8
        if: not is_compressed
        doc: Standard cluster descriptor, bits 1-8, reserved (set to 0).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", Standard Cluster Descriptor, bits 1-8'
      - id: reads_as_zeros
        type: b1
        if: not is_compressed
        doc: |
          Standard cluster descriptor, bit 0: the cluster reads as all zeros
          (the host offset, if any, only describes a preallocation; nothing is
          read from the backing file either). Always 0 in version 2 and with
          extended L2 entries.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", Standard Cluster Descriptor, bit 0'
      - id: compressed_hi
        type: b30
        if: is_compressed
        doc: |
          Compressed cluster descriptor, bits 32-61: the additional sector
          count (bits x to 61) and the top of the host offset (bits 32 to
          x - 1). Offset bits above 55 must be 0 (see
          `compressed_offset_rule`).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", Compressed Clusters Descriptor'
      - id: compressed_lo
        type: b32
        if: is_compressed
        doc: Compressed cluster descriptor, bits 0-31 of the host offset.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", Compressed Clusters Descriptor, bits 0 to x-1'
      - id: alignment_rule
        size: 0
        if: not is_compressed
        valid:
          expr: ofs_lo % (_root.header.cluster_size / 512) == 0
        doc: |
          Standard clusters: the host cluster offset must be aligned to a
          cluster boundary. Zero-length marker placed after the entry's last bit: a rule checked
          there fails with no byte half read (the JavaScript runtime, unlike
          Python's, keeps a half-read byte's bits across a seek, so a failure
          in the middle of the bit fields would spoil the next entry it reads).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", Standard Cluster Descriptor, bits 9-55'
      - id: compressed_offset_rule
        size: 0
        if: is_compressed
        valid:
          expr: compressed_hi % (1 << (_root.header.num_compressed_offset_bits - 32)) < 0x1000000
        doc: |
          Compressed clusters: when cluster_bits is small enough for the host
          offset field to reach past bit 55 (x > 56), those upper bits must be
          0. Checked after the 64 bits, like `alignment_rule`.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping ==", Compressed Clusters Descriptor, bits 0 to x-1'
      - id: zero_bitmap
        type: u4
        if: _root.header.has_extended_l2
        doc: |
          Extended L2 entries, bitmap bits 32-63: bit i set when subcluster i
          reads as zeros. Reserved (0) for compressed clusters.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Extended L2 Entries ==", Subcluster Allocation Bitmap, bits 32-63'
      - id: alloc_bitmap
        type: u4
        if: _root.header.has_extended_l2
        valid:
          expr: >-
            (_ & zero_bitmap) == 0
            and (_ == 0 or ofs_host_cluster != 0 or is_copied)
        doc: |
          Extended L2 entries, bitmap bits 0-31: bit i set when subcluster i is
          allocated (stored in the host cluster at subcluster offset i *
          header.len_subcluster); unset, it reads from the backing file or as
          zeros. A subcluster that reads as zeros must not be allocated, and
          an allocated subcluster needs a host cluster offset. Reserved (0)
          for compressed clusters.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Extended L2 Entries ==", Subcluster Allocation Bitmap, bits 0-31'
    instances:
      ofs_host_cluster:
        value: 'is_compressed ? 0 : ofs_hi * 0x100000000 + ofs_lo * 512'
        doc: |
          Standard clusters: offset of the host cluster (in the external data
          file if the image has one); 0 when there is none. Always 0 for a
          compressed cluster (see `ofs_compressed_data`).
      is_zero:
        value: >-
          not is_compressed and (_root.header.has_extended_l2
          ? zero_bitmap == 0xffffffff : reads_as_zeros)
        doc: |
          True when the whole guest cluster reads as zeros by this entry: the
          standard descriptor's bit 0, or with extended L2 entries every
          subcluster's "reads as zeros" bit.
      is_allocated:
        value: is_compressed or ofs_host_cluster != 0 or is_copied
        doc: |
          True when the entry has host storage: a compressed cluster, or a
          standard one with a host cluster offset (offset 0 with bit 63 set
          is host offset 0 in an external data file). False means the
          cluster reads from the backing file, or as zeros if there is none
          or `is_zero` is set.
      cluster_type:
        value: >-
          is_compressed ? 4
          : ((not _root.header.has_extended_l2 and reads_as_zeros)
          ? (ofs_host_cluster != 0 ? 2 : 1)
          : ((ofs_host_cluster != 0 or (_root.header.has_external_data_file and is_copied))
          ? 3 : 0))
        enum: cluster_type
        doc: |
          What the entry describes, classified as QEMU does (see the enum).
          With extended L2 entries, the subcluster bitmaps refine a
          `normal` or `unallocated` cluster.
      num_additional_sectors:
        value: 'is_compressed ? compressed_hi / (1 << (_root.header.num_compressed_offset_bits - 32)) : 0'
        doc: |
          Compressed clusters: number of 512-byte sectors the compressed data
          uses beyond the sector that holds its first byte (bits x to 61).
      ofs_compressed_data:
        value: >-
          is_compressed
          ? (compressed_hi % (1 << (_root.header.num_compressed_offset_bits - 32))) * 0x100000000 + compressed_lo
          : 0
        doc: |
          Compressed clusters: offset in the image file of the compressed
          data (bits 0 to x-1), usually not aligned to a cluster or sector.
      len_compressed_data:
        value: 'is_compressed ? (num_additional_sectors + 1) * 512 - ofs_compressed_data % 512 : 0'
        doc: |
          Compressed clusters: number of bytes from `ofs_compressed_data` to
          the end of its last sector, which hold the compressed data
          (decompression stops when a cluster has been produced, so the tail
          may belong to the next compressed cluster).
      data:
        io: _root._io
        pos: ofs_host_cluster
        size: _root.header.cluster_size
        if: >-
          cluster_type == cluster_type::normal
          and not _root.header.has_external_data_file
        doc: |
          Standard clusters stored in this file: the host cluster's bytes
          (lazy; encrypted if the image is). With extended L2 entries only
          the allocated subclusters hold guest data.
      compressed_data:
        io: _root._io
        pos: ofs_compressed_data
        size: len_compressed_data
        if: is_compressed
        doc: |
          Compressed clusters: the compressed bytes as stored (lazy, not
          decoded; raw deflate or zstd, see header.compression).
  guest_cluster:
    -webide-representation: 'guest {ofs_guest:hex}'
    doc: |
      One guest cluster and the lookup of the spec's "Cluster mapping"
      section: its L1 and L2 indexes, and (lazily) the one L1 entry and the
      one L2 entry that describe it, read in place in the active tables.
      Reads nothing from the stream until an instance is asked for.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Cluster mapping =="'
    params:
      - id: idx
        type: u8
        doc: Guest cluster number (guest offset / cluster size).
    instances:
      ofs_guest:
        value: idx * _root.header.cluster_size
        doc: Guest offset of the first byte of the cluster.
      l1_index:
        value: idx / _root.header.num_l2_entries
        doc: Index of the L1 table entry that covers this cluster.
      l2_index:
        value: idx % _root.header.num_l2_entries
        doc: Index of this cluster's entry in its L2 table.
      l1_entry:
        io: _root._io
        pos: _root.header.ofs_l1_table + l1_index * 8
        type: l1_entry
        if: l1_index < _root.header.num_l1_entries
        doc: |
          The active L1 entry that covers this cluster; absent when the L1
          table is too short to reach it (the cluster is unallocated).
      l2_entry:
        io: _root._io
        pos: l1_entry.ofs_l2_table + l2_index * _root.header.len_l2_entry
        type: l2_entry
        if: l1_index < _root.header.num_l1_entries and l1_entry.is_allocated
        doc: |
          The L2 entry that describes this cluster; absent when its L1 entry
          has no L2 table (the cluster is unallocated).
  host_cluster:
    -webide-representation: 'host {ofs_host_cluster:hex}, refcount {refcount:dec}'
    doc: |
      One host cluster and the refcount lookup of the spec's "Host cluster
      management" section: its refcount table and refcount block indexes,
      and (lazily) the one refcount table entry and the one refcount that
      concern it, read in place.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Host cluster management =="'
    params:
      - id: idx
        type: u8
        doc: Host cluster number (offset in the image file / cluster size).
    instances:
      ofs_host_cluster:
        value: idx * _root.header.cluster_size
        doc: Offset of the cluster in the image file.
      refcount_table_index:
        value: idx / _root.header.num_refcount_block_entries
        doc: Index of the refcount table entry that covers this cluster.
      refcount_block_index:
        value: idx % _root.header.num_refcount_block_entries
        doc: Index of this cluster's refcount in its refcount block.
      refcount_table_entry:
        io: _root._io
        pos: _root.header.ofs_refcount_table + refcount_table_index * 8
        type: refcount_table_entry
        if: refcount_table_index < _root.header.num_refcount_table_entries
        doc: |
          The refcount table entry that covers this cluster; absent when the
          refcount table is too short to reach it.
      has_refcount_block:
        value: >-
          refcount_table_index < _root.header.num_refcount_table_entries
          and refcount_table_entry.ofs_refcount_block != 0
        doc: True when a refcount block holds this cluster's refcount.
      refcount_word:
        io: _root._io
        pos: >-
          refcount_table_entry.ofs_refcount_block
          + refcount_block_index * _root.header.refcount_bits / 8
        type:
          switch-on: _root.header.refcount_bits
          cases:
            1: u1
            2: u1
            4: u1
            8: u1
            16: u2
            32: u4
            64: u8
        if: has_refcount_block
        doc: |
          The refcount block entry as read: the refcount itself for widths of
          8 bits and more, else the byte that holds it.
      refcount:
        value: >-
          not has_refcount_block ? 0
          : (_root.header.refcount_bits >= 8 ? refcount_word
          : (refcount_word >> ((refcount_block_index * _root.header.refcount_bits) % 8))
          % (1 << _root.header.refcount_bits))
        doc: |
          The cluster's refcount: 0 when free (or when no refcount block
          covers it), 1 when used once, 2 or more when shared (a write must
          copy it). Sub-byte refcounts are taken from their byte, bit 0 being
          its least significant bit.
  refcount_table:
    -webide-representation: 'refcount table'
    doc: The refcount table, pointers to the refcount blocks.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Host cluster management =="'
    seq:
      - id: entries
        type: refcount_table_entry
        repeat: expr
        repeat-expr: _root.header.num_refcount_table_entries
        doc: |
          Entry i covers host clusters i * header.num_refcount_block_entries
          onwards.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Host cluster management ==", Refcount table entry'
  refcount_table_entry:
    -webide-representation: 'refcount block at {ofs_refcount_block:hex}'
    doc: One refcount table entry (u8), bit 63 first.
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Host cluster management ==", Refcount table entry'
    seq:
      - id: ofs_hi
        type: b32
        doc: Bits 32-63 of the refcount block offset.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Host cluster management ==", Refcount table entry, bits 9-63'
      - id: ofs_lo
        type: b23
        doc: |
          Bits 9-31 of the refcount block offset. The offset must be aligned
          to a cluster boundary (see `alignment_rule`).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Host cluster management ==", Refcount table entry, bits 9-63'
      - id: reserved
        type: b9
        doc: Bits 0-8, reserved (set to 0).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Host cluster management ==", Refcount table entry, bits 0-8'
      - id: alignment_rule
        size: 0
        valid:
          expr: ofs_lo % (_root.header.cluster_size / 512) == 0
        doc: |
          The refcount block offset must be aligned to a cluster boundary. Zero-length marker placed after the entry's last bit: a rule checked
          there fails with no byte half read (the JavaScript runtime, unlike
          Python's, keeps a half-read byte's bits across a seek, so a failure
          in the middle of the bit fields would spoil the next entry it reads).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Host cluster management ==", Refcount table entry, bits 9-63'
    instances:
      ofs_refcount_block:
        value: ofs_hi * 0x100000000 + ofs_lo * 512
        doc: |
          Offset in the image file of the refcount block; 0 if it is not
          allocated (every refcount it would hold is 0).
      refcount_block:
        io: _root._io
        pos: ofs_refcount_block
        size: _root.header.cluster_size
        type: refcount_block
        if: ofs_refcount_block != 0
        doc: The refcount block (lazy; absent when not allocated).
  refcount_block:
    -webide-representation: 'refcount block'
    doc: |
      A refcount block: one cluster of header.num_refcount_block_entries
      refcounts of header.refcount_bits bits each. 0 means a free cluster, 1
      a used one, 2 or more a used one that a write must copy (COW).
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Host cluster management ==", Refcount block entry'
    seq:
      - id: refcounts
        type:
          switch-on: _root.header.refcount_bits
          cases:
            8: u1
            16: u2
            32: u4
            64: u8
        repeat: expr
        repeat-expr: _root.header.num_refcount_block_entries
        if: _root.header.refcount_bits >= 8
        doc: |
          Refcounts of 8 bits and wider, one per host cluster: entry j of the
          block under refcount table entry i is the refcount of host cluster
          i * header.num_refcount_block_entries + j.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Host cluster management ==", Refcount block entry'
      - id: packed_refcounts
        size-eos: true
        if: _root.header.refcount_bits < 8
        doc: |
          Refcounts of 1, 2 or 4 bits, kept raw: refcount j is in byte
          j * refcount_bits / 8, bit 0 meaning the least significant bit
          of the byte.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Host cluster management ==", Refcount block entry'
  snapshot:
    -webide-representation: 'id {id_str} "{name}"'
    doc: |
      One snapshot table entry, of variable length (40 bytes, extra data, ID
      and name), padded to a multiple of 8 bytes, except the last entry of the
      table (see `padding`).
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots =="'
    params:
      - id: idx
        type: u4
        doc: Index of the entry in the snapshot table (0 for the first).
    seq:
      - id: ofs_l1_table
        -orig-id: l1_table_offset
        type: u8
        valid:
          expr: _ % _root.header.cluster_size == 0
        doc: |
          Offset in the image file of the snapshot's L1 table. Must be
          aligned to a cluster boundary.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, bytes 0-7'
      - id: num_l1_entries
        -orig-id: l1_size
        type: u4
        doc: Number of entries in the snapshot's L1 table.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, bytes 8-11'
      - id: len_id_str
        -orig-id: id_str_size
        type: u2
        doc: Length of the unique ID string of the snapshot.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, bytes 12-13'
      - id: len_name
        -orig-id: name_size
        type: u2
        doc: Length of the name of the snapshot.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, bytes 14-15'
      - id: date_sec
        type: u4
        doc: Time the snapshot was taken, seconds since the Epoch.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, bytes 16-19'
      - id: date_nsec
        type: u4
        doc: Subsecond part of that time, in nanoseconds.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, bytes 20-23'
      - id: vm_clock_nsec
        type: u8
        doc: Time the guest had been running when the snapshot was taken, in nanoseconds.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, bytes 24-31'
      - id: len_vm_state_32
        -orig-id: vm_state_size
        type: u4
        doc: |
          Size of the VM state in bytes, 0 if none is saved; ignored when the
          extra data has the 64-bit size (see `len_vm_state`).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, bytes 32-35'
      - id: len_extra_data
        -orig-id: extra_data_size
        type: u4
        valid:
          expr: _root.header.version < 3 or _ >= 16
        doc: |
          Size of the extra data. Version 3 images must include extra data at
          least up to byte 55 of the entry (16 bytes).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, bytes 36-39'
      - id: extra_data
        size: len_extra_data
        type: snapshot_extra_data
        doc: Extra data for extensions of the format (see the type).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, extra data'
      - id: id_str
        type: str
        size: len_id_str
        doc: Unique ID string of the snapshot (not null terminated).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, unique ID string'
      - id: name
        type: str
        size: len_name
        doc: Name of the snapshot (not null terminated).
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, name'
      - id: padding
        size: (8 - (40 + len_extra_data + len_id_str + len_name) % 8) % 8
        if: idx + 1 < _root.header.num_snapshots
        doc: |
          Padding up to a multiple of 8 bytes, before the next entry. Not read
          after the last entry: QEMU rounds the offset up before each entry
          it writes, not after, so the table ends with the last name, and
          when the table is at the end of the file the padding is not there.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, padding'
    instances:
      len_vm_state:
        value: 'len_extra_data >= 8 ? extra_data.len_vm_state_64 : len_vm_state_32'
        doc: Size of the VM state in bytes (the 64-bit field when present).
      l1_table:
        io: _root._io
        pos: ofs_l1_table
        type: l1_table(num_l1_entries)
        doc: The snapshot's L1 table (lazy).
  snapshot_extra_data:
    -webide-representation: 'extra data'
    doc: |
      The extra data of a snapshot table entry: the fields this version of
      the spec defines, each present when the extra data is long enough,
      then any unknown rest (to be ignored).
    doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, extra data'
    seq:
      - id: len_vm_state_64
        -orig-id: vm_state_size_large
        type: u8
        if: _io.size >= 8
        doc: Size of the VM state in bytes, 0 if none is saved.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", extra data, bytes 40-47'
      - id: len_virtual_disk
        -orig-id: disk_size
        type: u8
        if: _io.size >= 16
        doc: Virtual disk size of the snapshot in bytes.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", extra data, bytes 48-55'
      - id: icount
        type: s8
        if: _io.size >= 24
        doc: |
          Record/replay instruction count when the snapshot was taken; -1 if
          icount was disabled.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", extra data, bytes 56-63'
      - id: unknown
        size-eos: true
        doc: Extra data this version of the spec does not define.
        doc-ref: 'QEMU docs/interop/qcow2.txt "== Snapshots ==", Snapshot table entry, extra data'
enums:
  crypt_method:
    0:
      id: none
      doc: No encryption.
    1:
      id: aes
      doc: |
        AES-256 in CBC mode, plain64 IVs from the guest sector; no longer
        supported by QEMU's system emulators (command line tools only).
    2:
      id: luks
      doc: |
        LUKS: algorithms in the LUKS header, which the full disk encryption
        header pointer extension locates.
  compression_type:
    0:
      id: zlib
      -orig-id: deflate
      doc: |
        Deflate (RFC 1951), which QEMU calls "zlib"; compressed clusters
        have no zlib header. The default, and what an absent field means.
    1:
      id: zstd
      doc: Zstandard.
  header_extension_type:
    0x00000000:
      id: end
      doc: End of the header extension area.
    0xe2792aca:
      id: backing_file_format
      doc: Backing file format name string (e.g. "qcow2", "raw").
    0x6803f857:
      id: feature_name_table
      doc: Feature name table.
    0x23852875:
      id: bitmaps
      doc: Bitmaps extension.
    0x0537be77:
      id: full_disk_encryption
      doc: Full disk encryption header pointer.
    0x44415441:
      id: external_data_file
      doc: External data file name string.
  feature_type:
    0:
      id: incompatible
      doc: A bit of incompatible_features.
    1:
      id: compatible
      doc: A bit of compatible_features.
    2:
      id: autoclear
      doc: A bit of autoclear_features.
  bitmap_type:
    1:
      id: dirty_tracking
      doc: |
        Dirty tracking bitmap: a set bit means the range of the virtual disk
        it covers was written while the bitmap was enabled.
  cluster_type:
    0:
      id: unallocated
      doc: |
        No host storage: the cluster reads from the backing file, or as
        zeros if there is none (QEMU's QCOW2_CLUSTER_UNALLOCATED).
    1:
      id: zero_plain
      doc: |
        Reads as zeros, with no host cluster (QCOW2_CLUSTER_ZERO_PLAIN).
    2:
      id: zero_allocated
      doc: |
        Reads as zeros; a host cluster is preallocated for it
        (QCOW2_CLUSTER_ZERO_ALLOC).
    3:
      id: normal
      doc: Stored uncompressed in a host cluster (QCOW2_CLUSTER_NORMAL).
    4:
      id: compressed
      doc: Stored compressed (QCOW2_CLUSTER_COMPRESSED).

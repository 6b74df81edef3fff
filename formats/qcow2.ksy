meta:
  id: qcow2
  title: QEMU qcow2 disk image
  application: QEMU
  file-extension: qcow2
  xref:
    forensicswiki: QCOW_Image_Format
    justsolve: Qcow
    mime: application/x-qemu-disk
  license: CC0-1.0
  ks-version: '0.11'
  encoding: UTF-8
  endian: be
  bit-endian: be
doc: |
  qcow2 ("QEMU copy-on-write", versions 2 and 3), the native disk image
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
doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html
seq:
  - id: header
    type: header
    doc: The image header.
  - id: header_extension_area
    size: header.len_header_extension_area
    type: header_extension_area
    doc: |
      The header extensions: from the end of the header to the backing file
      name, or to the end of the first cluster.
instances:
  backing_file_name:
    pos: header.ofs_backing_file
    size: header.len_backing_file
    type: str
    if: header.ofs_backing_file != 0
    doc: Name of the backing file (not null terminated).
  l1_table:
    pos: header.ofs_l1_table
    size: header.num_l1_entries * 8
    type: l1_table
    doc: The active L1 table.
  refcount_table:
    pos: header.ofs_refcount_table
    size: header.num_refcount_table_clusters * header.cluster_size
    type: refcount_table
    doc: The refcount table.
  snapshots:
    pos: header.ofs_snapshots
    type: snapshot(_index)
    repeat: expr
    repeat-expr: header.num_snapshots
    doc: The snapshot table.
types:
  header:
    -webide-representation: 'v{version:dec}, {cluster_size:dec} B clusters, {len_virtual_disk:dec} B disk'
    doc: |
      The header, at offset 0: 72 bytes in version 2, header_length bytes in
      version 3.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#header
    seq:
      - id: magic
        contents: [0x51, 0x46, 0x49, 0xfb]
        doc: '"QFI\xfb".'
      - id: version
        type: u4
        valid:
          any-of: [2, 3]
        doc: Version of the format, 2 or 3.
      - id: ofs_backing_file
        -orig-id: backing_file_offset
        type: u8
        doc: Offset of the backing file name, 0 if there is no backing file.
      - id: len_backing_file
        -orig-id: backing_file_size
        type: u4
        valid:
          expr: ofs_backing_file == 0 or _ <= 1023
        doc: Length of the backing file name, at most 1023 bytes.
      - id: cluster_bits
        type: u4
        valid:
          min: 9
          max: 21
        doc: |
          log2 of the cluster size: at least 9 by the spec, at most 21 (2 MiB)
          in QEMU.
      - id: len_virtual_disk
        -orig-id: size
        type: u8
        doc: Size of the virtual disk in bytes.
      - id: crypt_method
        type: u4
        enum: crypt_method
        valid:
          in-enum: true
        doc: Encryption of guest data.
      - id: num_l1_entries
        -orig-id: l1_size
        type: u4
        doc: Number of entries in the active L1 table.
      - id: ofs_l1_table
        -orig-id: l1_table_offset
        type: u8
        valid:
          expr: _ % cluster_size == 0
        doc: Offset of the active L1 table, cluster-aligned.
      - id: ofs_refcount_table
        -orig-id: refcount_table_offset
        type: u8
        valid:
          expr: _ % cluster_size == 0
        doc: Offset of the refcount table, cluster-aligned.
      - id: num_refcount_table_clusters
        -orig-id: refcount_table_clusters
        type: u4
        doc: Number of clusters of the refcount table.
      - id: num_snapshots
        -orig-id: nb_snapshots
        type: u4
        doc: Number of internal snapshots.
      - id: ofs_snapshots
        -orig-id: snapshots_offset
        type: u8
        valid:
          expr: _ % cluster_size == 0
        doc: Offset of the snapshot table, cluster-aligned.
      - id: incompatible_features
        type: incompatible_features
        if: version >= 3
        doc: Features a reader must know to open the image (version 3).
      - id: compatible_features
        type: compatible_features
        if: version >= 3
        doc: Features a reader may ignore (version 3).
      - id: autoclear_features
        type: autoclear_features
        if: version >= 3
        doc: Features a writer that does not know them clears (version 3).
      - id: refcount_order
        type: u4
        if: version >= 3
        valid:
          max: 6
        doc: log2 of the refcount width in bits (version 3; version 2 uses 4).
      - id: len_header
        -orig-id: header_length
        type: u4
        if: version >= 3
        valid:
          expr: >-
            _ >= 104 and _ % 8 == 0 and _ <= cluster_size
            and (not incompatible_features.has_compression_type or _ > 104)
        doc: |
          Length of the header (version 3): at least 104, a multiple of 8,
          and past byte 104 when the compression type bit is set.
      - id: compression_type
        type: u1
        enum: compression_type
        if: version >= 3 and len_header > 104
        valid:
          expr: >-
            incompatible_features.has_compression_type
            ? _ == compression_type::zstd : _ == compression_type::zlib
        doc: |
          Compression method of compressed clusters: not zlib if, and only if,
          the compression type bit is set; a known method (the rule lists
          them, as `in-enum` would).
      - id: padding
        size: len_header - 105
        if: version >= 3 and len_header > 105
        doc: |
          Header padding (zeros), or additional fields of a later version of
          the spec, which a reader may ignore; not checked.
    instances:
      cluster_size:
        value: 1 << cluster_bits
        doc: Size of a cluster in bytes.
      ofs_header_extensions:
        value: 'version >= 3 ? len_header : 72'
        doc: Offset of the first header extension.
      ofs_end_header_extensions:
        value: 'ofs_backing_file != 0 ? ofs_backing_file : cluster_size'
        doc: Where the header extensions end.
      len_header_extension_area:
        value: >-
          ofs_end_header_extensions > ofs_header_extensions
          ? ofs_end_header_extensions - ofs_header_extensions : 0
        doc: Size of the header extension area.
      refcount_bits:
        value: '1 << (version >= 3 ? refcount_order : 4)'
        doc: Width of a refcount in bits.
      num_refcount_table_entries:
        value: num_refcount_table_clusters * (cluster_size / 8)
        doc: Number of refcount table entries.
      num_refcount_block_entries:
        value: cluster_size * 8 / refcount_bits
        doc: Number of refcounts in a refcount block.
      is_dirty:
        value: version >= 3 and incompatible_features.is_dirty
        doc: The dirty bit.
      is_corrupt:
        value: version >= 3 and incompatible_features.is_corrupt
        doc: The corrupt bit.
      has_external_data_file:
        value: version >= 3 and incompatible_features.has_external_data_file
        doc: Guest clusters are in an external data file.
      has_extended_l2:
        value: version >= 3 and incompatible_features.has_extended_l2
        doc: L2 entries are extended (128 bits, with subclusters).
      compression:
        value: 'version >= 3 and len_header > 104 ? compression_type.to_i : 0'
        enum: compression_type
        doc: Compression method in use (zlib when the field is absent).
      len_l2_entry:
        value: 'has_extended_l2 ? 16 : 8'
        doc: Size of an L2 entry in bytes.
      num_l2_entries:
        value: cluster_size / len_l2_entry
        doc: Number of entries in an L2 table.
      len_subcluster:
        value: 'has_extended_l2 ? cluster_size / 32 : cluster_size'
        doc: Size of a subcluster (the cluster itself without extended L2).
      num_guest_clusters:
        value: (len_virtual_disk + cluster_size - 1) / cluster_size
        doc: Number of guest clusters (the last may be partial).
      num_compressed_offset_bits:
        -orig-id: x
        value: 62 - (cluster_bits - 8)
        doc: Width x of the host offset in a compressed cluster descriptor.
  incompatible_features:
    -webide-representation: 'dirty={is_dirty} corrupt={is_corrupt} data_file={has_external_data_file} compression={has_compression_type} extended_l2={has_extended_l2}'
    doc: The incompatible feature bits, bit 63 first.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#header
    seq:
      - id: reserved_hi
        type: b32
        valid: 0
        doc: Bits 32-63, unknown features; a reader must refuse the image.
      - id: reserved_lo
        type: b27
        valid: 0
        doc: Bits 5-31, unknown features; a reader must refuse the image.
      - id: has_extended_l2
        type: b1
        valid:
          expr: not _ or _parent.cluster_bits >= 14
        doc: Bit 4, extended L2 entries; needs clusters of 16 KiB or more.
      - id: has_compression_type
        type: b1
        doc: Bit 3, compression_type is not zlib.
      - id: has_external_data_file
        type: b1
        doc: |
          Bit 2, external data file: guest clusters are there, at their guest
          offset, not refcounted; no compressed clusters, no snapshots.
      - id: is_corrupt
        type: b1
        doc: Bit 1, corrupt bit; the image must not be written to.
      - id: is_dirty
        type: b1
        doc: Bit 0, dirty bit; refcounts may be inconsistent.
  compatible_features:
    -webide-representation: 'lazy_refcounts={has_lazy_refcounts}'
    doc: The compatible feature bits, bit 63 first.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#header
    seq:
      - id: reserved_hi
        type: b32
        doc: Bits 32-63, reserved.
      - id: reserved_lo
        type: b31
        doc: Bits 1-31, reserved.
      - id: has_lazy_refcounts
        type: b1
        doc: Bit 0, lazy refcounts (the image is dirty while they lag).
  autoclear_features:
    -webide-representation: 'bitmaps={has_bitmaps} raw_data={has_raw_external_data}'
    doc: The autoclear feature bits, bit 63 first.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#header
    seq:
      - id: reserved_hi
        type: b32
        doc: Bits 32-63, reserved.
      - id: reserved_lo
        type: b30
        doc: Bits 2-31, reserved.
      - id: has_raw_external_data
        type: b1
        valid:
          expr: not _ or _parent.incompatible_features.has_external_data_file
        doc: |
          Bit 1, the external data file is a raw image on its own; only with
          the external data file bit.
      - id: has_bitmaps
        type: b1
        doc: Bit 0, the bitmaps extension is consistent.
  header_extension_area:
    -webide-representation: 'header extensions'
    doc: Header extensions up to the end marker or the end of the area.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#header-extensions
    seq:
      - id: extensions
        type: header_extension
        if: not _io.eof
        repeat: until
        repeat-until: _.extension_type == header_extension_type::end or _io.eof
        doc: The extensions, the end marker last.
  header_extension:
    -webide-representation: '{extension_type} {len_data:dec} B'
    doc: One header extension, padded to a multiple of 8 bytes.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#header-extensions
    seq:
      - id: extension_type
        type: u4
        enum: header_extension_type
        doc: Type of the extension; unknown types are ignored.
      - id: len_data
        type: u4
        doc: Length of the data.
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
        doc: The data (raw bytes for unknown types).
      - id: padding
        size: (8 - len_data % 8) % 8
        doc: Padding to a multiple of 8 bytes.
  string_extension:
    -webide-representation: '{value}'
    doc: A string extension (backing file format, external data file name).
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#string-header-extensions
    seq:
      - id: value
        type: str
        size-eos: true
        doc: The string, not null terminated.
  feature_name_table:
    -webide-representation: 'feature names'
    doc: Names of feature bits, for error messages.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#feature-name-table
    seq:
      - id: entries
        type: feature_name
        repeat: eos
        doc: The 48-byte entries.
  feature_name:
    -webide-representation: '{feature_type} bit {bit_number:dec}: {name}'
    doc: One feature name.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#feature-name-table
    seq:
      - id: feature_type
        type: u1
        enum: feature_type
        doc: The feature bitmap of the bit.
      - id: bit_number
        type: u1
        valid:
          max: 63
        doc: Bit number in that bitmap.
      - id: name
        type: strz
        size: 46
        doc: The name, zero-padded.
  bitmaps_extension:
    -webide-representation: '{num_bitmaps:dec} bitmaps'
    doc: Where the bitmap directory is.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#bitmaps-extension
    seq:
      - id: num_bitmaps
        -orig-id: nb_bitmaps
        type: u4
        valid:
          min: 1
        doc: Number of bitmaps, at least 1.
      - id: reserved
        type: u4
        valid: 0
        doc: Reserved, zero.
      - id: len_bitmap_directory
        -orig-id: bitmap_directory_size
        type: u8
        doc: Size of the bitmap directory.
      - id: ofs_bitmap_directory
        -orig-id: bitmap_directory_offset
        type: u8
        valid:
          expr: _ % _root.header.cluster_size == 0
        doc: Offset of the bitmap directory, cluster-aligned.
    instances:
      bitmap_directory:
        io: _root._io
        pos: ofs_bitmap_directory
        size: len_bitmap_directory
        type: bitmap_directory
        doc: The bitmap directory.
  bitmap_directory:
    -webide-representation: 'bitmap directory'
    doc: The bitmap directory.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#bitmap-directory
    seq:
      - id: entries
        type: bitmap_directory_entry
        repeat: expr
        repeat-expr: _parent.num_bitmaps
        doc: One entry per bitmap.
  bitmap_directory_entry:
    -webide-representation: '{name} {bitmap_type} granularity 2^{granularity_bits:dec}'
    doc: One bitmap, padded to a multiple of 8 bytes.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#bitmap-directory
    seq:
      - id: ofs_bitmap_table
        -orig-id: bitmap_table_offset
        type: u8
        valid:
          expr: _ % _root.header.cluster_size == 0
        doc: Offset of the bitmap table, cluster-aligned.
      - id: num_bitmap_table_entries
        -orig-id: bitmap_table_size
        type: u4
        doc: Number of entries in the bitmap table.
      - id: flags
        type: bitmap_flags
        doc: The bitmap's flags.
      - id: bitmap_type
        -orig-id: type
        type: u1
        enum: bitmap_type
        valid:
          in-enum: true
        doc: |
          Type of the bitmap. Dirty tracking is the only type, so the "auto"
          flag's rule (only on dirty tracking bitmaps) holds with this one.
      - id: granularity_bits
        type: u1
        valid:
          max: 63
        doc: A bit covers 2^granularity_bits bytes of the disk.
      - id: len_name
        -orig-id: name_size
        type: u2
        valid:
          min: 1
        doc: Length of the name, at least 1.
      - id: len_extra_data
        -orig-id: extra_data_size
        type: u4
        doc: Size of the extra data.
      - id: extra_data
        size: len_extra_data
        doc: Type-specific extra data.
      - id: name
        type: str
        size: len_name
        doc: Name of the bitmap.
      - id: padding
        size: (8 - (24 + len_extra_data + len_name) % 8) % 8
        valid:
          expr: _.size == 0 or _.max == 0
        doc: Padding to a multiple of 8 bytes, zeros.
    instances:
      bitmap_table:
        io: _root._io
        pos: ofs_bitmap_table
        size: 8
        type: bitmap_table_entry
        repeat: expr
        repeat-expr: num_bitmap_table_entries
        doc: The bitmap table.
  bitmap_flags:
    -webide-representation: 'in_use={is_in_use} auto={is_auto} extra_data_compatible={is_extra_data_compatible}'
    doc: The flags of a bitmap, bit 31 first.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#bitmap-directory
    seq:
      - id: reserved
        type: b29
        valid: 0
        doc: Bits 3-31, reserved, zero.
      - id: is_extra_data_compatible
        type: b1
        doc: Bit 2, the bitmap may be used even if its extra data is unknown.
      - id: is_auto
        type: b1
        doc: Bit 1, the bitmap is enabled and tracks every write.
      - id: is_in_use
        type: b1
        doc: Bit 0, the bitmap was not saved and may be inconsistent.
  bitmap_table_entry:
    -webide-representation: '{ofs_bitmap_data:hex} all_ones={is_all_ones}'
    doc: One bitmap table entry, bit 63 first.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#bitmap-table
    seq:
      - id: reserved_hi
        type: b8
        valid: 0
        doc: Bits 56-63, reserved, zero.
      - id: ofs_hi
        type: b24
        doc: Bits 32-55 of the data cluster offset.
      - id: ofs_lo
        type: b23
        valid:
          expr: _ % (_root.header.cluster_size / 512) == 0
        doc: Bits 9-31 of the data cluster offset, cluster-aligned.
      - id: reserved_lo
        type: b8
        valid: 0
        doc: Bits 1-8, reserved, zero.
      - id: is_all_ones
        type: b1
        valid:
          expr: not _ or (ofs_hi == 0 and ofs_lo == 0)
        doc: Bit 0, an unallocated cluster reads as ones (zero if allocated).
    instances:
      ofs_bitmap_data:
        value: ofs_hi * 0x100000000 + ofs_lo * 512
        doc: Offset of this cluster of bitmap data, 0 if unallocated.
      data:
        io: _root._io
        pos: ofs_bitmap_data
        size: _root.header.cluster_size
        if: ofs_bitmap_data != 0
        doc: This cluster of bitmap data, least significant bit first.
        doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#bitmap-data
  full_disk_encryption_header_pointer:
    -webide-representation: '{ofs_encryption_header:hex}, {len_encryption_header:dec} B'
    doc: Where the encryption header (LUKS) is.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#full-disk-encryption-header-pointer
    seq:
      - id: ofs_encryption_header
        type: u8
        valid:
          expr: _ % _root.header.cluster_size == 0
        doc: Offset of the encryption header, cluster-aligned.
      - id: len_encryption_header
        type: u8
        doc: Length of the encryption header.
    instances:
      encryption_header:
        io: _root._io
        pos: ofs_encryption_header
        size: len_encryption_header
        type:
          switch-on: _root.header.crypt_method
          cases:
            'crypt_method::luks': luks_header
        doc: The encryption header; for LUKS, its partition header and key material.
  luks_header:
    -webide-representation: 'LUKS{version:dec} {cipher_name}-{cipher_mode} {hash_spec}'
    doc: |
      The LUKS version 1 partition header at the start of the encryption
      header, its key slots labelled; the key material follows it, raw. (The
      Kaitai format gallery's luks.ksy describes the same header; a copy of
      this file there could import it instead.)
    doc-ref: https://gitlab.com/cryptsetup/cryptsetup/-/wikis/LUKS-standard/on-disk-format.pdf
    seq:
      - id: magic
        contents: [0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]
        doc: '"LUKS\xba\xbe".'
      - id: version
        type: u2
        doc: LUKS version (1).
      - id: cipher_name
        type: strz
        size: 32
        encoding: ASCII
        doc: Cipher, e.g. "aes".
      - id: cipher_mode
        type: strz
        size: 32
        encoding: ASCII
        doc: Cipher mode, e.g. "xts-plain64".
      - id: hash_spec
        type: strz
        size: 32
        encoding: ASCII
        doc: Hash of the key derivation, e.g. "sha256".
      - id: ofs_payload
        -orig-id: payload-offset
        type: u4
        doc: Offset of the payload in 512-byte sectors (unused in qcow2).
      - id: len_key
        -orig-id: key-bytes
        type: u4
        doc: Length of the master key in bytes.
      - id: mk_digest
        size: 20
        doc: Digest of the master key.
      - id: mk_digest_salt
        size: 32
        doc: Salt of that digest.
      - id: mk_digest_iterations
        type: u4
        doc: PBKDF2 iterations of that digest.
      - id: uuid
        type: strz
        size: 40
        encoding: ASCII
        doc: UUID of the partition.
      - id: key_slots
        type: luks_key_slot
        repeat: expr
        repeat-expr: 8
        doc: The eight key slots.
  luks_key_slot:
    -webide-representation: '{state}, key material at sector {ofs_key_material:dec}'
    doc: One LUKS key slot.
    doc-ref: https://gitlab.com/cryptsetup/cryptsetup/-/wikis/LUKS-standard/on-disk-format.pdf
    seq:
      - id: state
        -orig-id: active
        type: u4
        enum: luks_key_slot_state
        doc: Whether the slot holds a key.
      - id: iterations
        type: u4
        doc: PBKDF2 iterations.
      - id: salt
        size: 32
        doc: PBKDF2 salt.
      - id: ofs_key_material
        -orig-id: key-material-offset
        type: u4
        doc: Key material offset in 512-byte sectors, from the encryption header's start.
      - id: num_stripes
        -orig-id: stripes
        type: u4
        doc: Anti-forensic stripes of the key material.
  l1_table:
    -webide-representation: 'L1 table'
    doc: An L1 table (the active one or a snapshot's).
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#cluster-mapping
    seq:
      - id: entries
        type: l1_entry
        repeat: eos
        doc: Entry i covers guest clusters from i * header.num_l2_entries on.
  l1_entry:
    -webide-representation: 'L2 table at {ofs_l2_table:hex}, copied={is_copied}'
    doc: One L1 table entry, bit 63 first.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#cluster-mapping
    seq:
      - id: is_copied
        type: b1
        doc: Bit 63, the L2 table's refcount is 1 (active table only).
      - id: reserved_hi
        type: b7
        valid: 0
        doc: Bits 56-62, reserved, zero.
      - id: ofs_hi
        type: b24
        doc: Bits 32-55 of the L2 table offset.
      - id: ofs_lo
        type: b23
        valid:
          expr: _ % (_root.header.cluster_size / 512) == 0
        doc: Bits 9-31 of the L2 table offset, cluster-aligned.
      - id: reserved_lo
        type: b9
        valid: 0
        doc: Bits 0-8, reserved, zero.
    instances:
      ofs_l2_table:
        value: ofs_hi * 0x100000000 + ofs_lo * 512
        doc: Offset of the L2 table, 0 if unallocated.
      is_allocated:
        value: ofs_l2_table != 0
        doc: The entry points at an L2 table.
      l2_table:
        io: _root._io
        pos: ofs_l2_table
        size: _root.header.cluster_size
        type: l2_table
        if: is_allocated
        doc: The L2 table.
  l2_table:
    -webide-representation: 'L2 table'
    doc: An L2 table, one cluster.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#cluster-mapping
    seq:
      - id: entries
        type: l2_entry
        repeat: expr
        repeat-expr: _root.header.num_l2_entries
        doc: Entry j under L1 entry i is guest cluster i * header.num_l2_entries + j.
  l2_entry:
    -webide-representation: '{status} {ofs_host_cluster:hex} {ofs_compressed_data:hex}'
    doc: |
      One L2 entry, bit 63 first: a standard or a compressed cluster
      descriptor (by bit 62), then, with extended L2 entries, the subcluster
      bitmap.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#cluster-mapping
    seq:
      - id: is_copied
        type: b1
        doc: |
          Bit 63, a standard cluster whose refcount is 1 (active tables
          only); with an external data file, every allocated cluster.
      - id: is_compressed
        type: b1
        doc: Bit 62, a compressed cluster.
      - id: reserved_hi
        type: b6
        if: not is_compressed
        doc: Bits 56-61, reserved.
      - id: ofs_hi
        type: b24
        if: not is_compressed
        doc: Bits 32-55 of the host cluster offset.
      - id: ofs_lo
        type: b23
        if: not is_compressed
        valid:
          expr: _ % (_root.header.cluster_size / 512) == 0
        doc: Bits 9-31 of the host cluster offset, cluster-aligned.
      - id: reserved_lo
        type: b8
        if: not is_compressed
        doc: Bits 1-8, reserved.
      - id: reads_as_zeros
        type: b1
        if: not is_compressed
        doc: Bit 0, the cluster reads as zeros (version 3, not with extended L2).
      - id: compressed_hi
        type: b30
        if: is_compressed
        valid:
          expr: _ % (1 << (_root.header.num_compressed_offset_bits - 32)) < 0x1000000
        doc: |
          Bits 32-61 of a compressed descriptor: the additional sector count
          (bits x-61) above the top of the host offset (bits 32 to x-1), whose
          bits above 55 are zero.
      - id: compressed_lo
        type: b32
        if: is_compressed
        doc: Bits 0-31 of the compressed data's host offset.
      - id: zero_bitmap
        type: u4
        if: _root.header.has_extended_l2
        valid:
          expr: not is_compressed or _ == 0
        doc: Bits 32-63 of the subcluster bitmap, subcluster i reads as zeros (0 if compressed).
        doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#extended-l2-entries
      - id: alloc_bitmap
        type: u4
        if: _root.header.has_extended_l2
        valid:
          expr: >-
            is_compressed ? _ == 0
            : (_ & zero_bitmap) == 0 and (_ == 0 or ofs_host_cluster != 0 or is_copied)
        doc: |
          Bits 0-31 of the subcluster bitmap, subcluster i is allocated: not
          with its zero bit, only with a host cluster (0 if compressed).
        doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#extended-l2-entries
    instances:
      ofs_host_cluster:
        value: 'is_compressed ? 0 : ofs_hi * 0x100000000 + ofs_lo * 512'
        doc: Offset of the host cluster (in the external data file if any), 0 if none.
      is_zero:
        value: >-
          not is_compressed and (_root.header.has_extended_l2
          ? zero_bitmap == 0xffffffff : reads_as_zeros)
        doc: The whole cluster reads as zeros.
      is_allocated:
        value: is_compressed or ofs_host_cluster != 0 or is_copied
        doc: The entry has host storage (offset 0 with bit 63 is offset 0 of an external data file).
      cluster_type:
        value: >-
          is_compressed ? 4
          : ((not _root.header.has_extended_l2 and reads_as_zeros)
          ? (ofs_host_cluster != 0 ? 2 : 1)
          : ((ofs_host_cluster != 0 or (_root.header.has_external_data_file and is_copied))
          ? 3 : 0))
        enum: cluster_type
        doc: The cluster's type as QEMU classifies it (without the subcluster bitmap).
      status:
        value: >-
          is_compressed ? 3
          : (not _root.header.has_extended_l2
          ? (cluster_type == cluster_type::normal ? 2 : (cluster_type == cluster_type::unallocated ? 0 : 1))
          : (alloc_bitmap == 0xffffffff ? 2
          : (zero_bitmap == 0xffffffff ? 1
          : ((alloc_bitmap | zero_bitmap) == 0 ? 0 : 4))))
        enum: cluster_status
        doc: |
          How the guest cluster reads, subclusters included: from the host
          cluster, as zeros, unallocated, compressed, or subclusters that
          differ (see `subclusters`).
      subclusters:
        pos: 0
        type: subcluster(_index)
        repeat: expr
        repeat-expr: 32
        if: _root.header.has_extended_l2 and not is_compressed
        doc: Extended L2 entries, the status of each subcluster.
      num_additional_sectors:
        value: 'is_compressed ? compressed_hi / (1 << (_root.header.num_compressed_offset_bits - 32)) : 0'
        doc: Number of 512-byte sectors of compressed data after the first.
      ofs_compressed_data:
        value: >-
          is_compressed
          ? (compressed_hi % (1 << (_root.header.num_compressed_offset_bits - 32))) * 0x100000000 + compressed_lo
          : 0
        doc: Offset of the compressed data.
      len_compressed_data:
        value: 'is_compressed ? (num_additional_sectors + 1) * 512 - ofs_compressed_data % 512 : 0'
        doc: |
          Bytes from the compressed data's offset to the end of its last
          sector; the data ends within them.
      len_data_in_file:
        value: >-
          _root._io.size <= (is_compressed ? ofs_compressed_data : ofs_host_cluster) ? 0
          : (_root._io.size - (is_compressed ? ofs_compressed_data : ofs_host_cluster)
          < (is_compressed ? len_compressed_data : _root.header.cluster_size)
          ? _root._io.size - (is_compressed ? ofs_compressed_data : ofs_host_cluster)
          : (is_compressed ? len_compressed_data : _root.header.cluster_size))
        doc: |
          Bytes of `data` or `compressed_data` the file holds: all of them, or
          those before its end (QEMU reads zeros past it).
      data:
        io: _root._io
        pos: ofs_host_cluster
        size: len_data_in_file
        if: >-
          cluster_type == cluster_type::normal
          and not _root.header.has_external_data_file
        doc: |
          The host cluster's bytes (encrypted if the image is; with extended
          L2 entries only allocated subclusters hold guest data).
      compressed_data:
        io: _root._io
        pos: ofs_compressed_data
        size: len_data_in_file
        if: is_compressed
        doc: The compressed data, not decoded (raw deflate or a zstd frame).
        doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#cluster-mapping
  subcluster:
    -webide-representation: '{status} at {ofs_host:hex}'
    doc: One subcluster of an extended L2 entry.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#extended-l2-entries
    params:
      - id: idx
        type: u1
        doc: Subcluster number, 0 to 31.
    instances:
      status:
        value: >-
          (_parent.alloc_bitmap >> idx) & 1 == 1 ? 1
          : ((_parent.zero_bitmap >> idx) & 1 == 1 ? 2 : 0)
        enum: subcluster_status
        doc: Allocated, reads as zeros, or unallocated.
      ofs_host:
        value: '_parent.ofs_host_cluster + idx * _root.header.len_subcluster'
        doc: Host offset of the subcluster (meaningful when allocated).
  guest_cluster:
    -webide-representation: 'guest {ofs_guest:hex}'
    doc: |
      The lookup of one guest cluster: its L1 and L2 indexes and the one L1
      and L2 entry that map it, read in place in the active tables.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#cluster-mapping
    params:
      - id: idx
        type: u8
        doc: Guest cluster number (guest offset / cluster size).
    instances:
      ofs_guest:
        value: idx * _root.header.cluster_size
        doc: Guest offset of the cluster.
      l1_index:
        value: idx / _root.header.num_l2_entries
        doc: Index of its L1 entry.
      l2_index:
        value: idx % _root.header.num_l2_entries
        doc: Index of its entry in the L2 table.
      l1_entry:
        io: _root._io
        pos: _root.header.ofs_l1_table + l1_index * 8
        size: 8
        type: l1_entry
        if: l1_index < _root.header.num_l1_entries
        doc: Its L1 entry; absent past the L1 table (unallocated).
      l2_entry:
        io: _root._io
        pos: l1_entry.ofs_l2_table + l2_index * _root.header.len_l2_entry
        size: _root.header.len_l2_entry
        type: l2_entry
        if: l1_index < _root.header.num_l1_entries and l1_entry.is_allocated
        doc: Its L2 entry; absent without an L2 table (unallocated).
  host_cluster:
    -webide-representation: 'host {ofs_host_cluster:hex}, refcount {refcount:dec}'
    doc: |
      The lookup of one host cluster's refcount: the one refcount table entry
      and the one refcount, read in place.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#host-cluster-management
    params:
      - id: idx
        type: u8
        doc: Host cluster number (file offset / cluster size).
    instances:
      ofs_host_cluster:
        value: idx * _root.header.cluster_size
        doc: Offset of the cluster in the file.
      refcount_table_index:
        value: idx / _root.header.num_refcount_block_entries
        doc: Index of its refcount table entry.
      refcount_block_index:
        value: idx % _root.header.num_refcount_block_entries
        doc: Index of its refcount in the block.
      refcount_table_entry:
        io: _root._io
        pos: _root.header.ofs_refcount_table + refcount_table_index * 8
        size: 8
        type: refcount_table_entry
        if: refcount_table_index < _root.header.num_refcount_table_entries
        doc: Its refcount table entry; absent past the refcount table.
      has_refcount_block:
        value: >-
          refcount_table_index < _root.header.num_refcount_table_entries
          and refcount_table_entry.ofs_refcount_block != 0
        doc: A refcount block covers the cluster.
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
        doc: The refcount, or for widths under 8 bits the byte that holds it.
      refcount:
        value: >-
          not has_refcount_block ? 0
          : (_root.header.refcount_bits >= 8 ? refcount_word
          : (refcount_word >> ((refcount_block_index * _root.header.refcount_bits) % 8))
          % (1 << _root.header.refcount_bits))
        doc: The refcount (bit 0 of a byte is its least significant bit).
  refcount_table:
    -webide-representation: 'refcount table'
    doc: The refcount table.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#host-cluster-management
    seq:
      - id: entries
        type: refcount_table_entry
        repeat: expr
        repeat-expr: _root.header.num_refcount_table_entries
        doc: Entry i covers host clusters from i * header.num_refcount_block_entries on.
  refcount_table_entry:
    -webide-representation: 'refcount block at {ofs_refcount_block:hex}'
    doc: One refcount table entry, bit 63 first.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#host-cluster-management
    seq:
      - id: ofs_hi
        type: b32
        doc: Bits 32-63 of the refcount block offset.
      - id: ofs_lo
        type: b23
        valid:
          expr: _ % (_root.header.cluster_size / 512) == 0
        doc: Bits 9-31 of the refcount block offset, cluster-aligned.
      - id: reserved
        type: b9
        doc: Bits 0-8, reserved.
    instances:
      ofs_refcount_block:
        value: ofs_hi * 0x100000000 + ofs_lo * 512
        doc: Offset of the refcount block, 0 if unallocated (refcounts 0).
      refcount_block:
        io: _root._io
        pos: ofs_refcount_block
        size: _root.header.cluster_size
        type: refcount_block
        if: ofs_refcount_block != 0
        doc: The refcount block.
  refcount_block:
    -webide-representation: 'refcount block'
    doc: A refcount block, one cluster of refcounts.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#host-cluster-management
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
        doc: Refcounts of 8 bits or more.
      - id: packed_refcounts
        size-eos: true
        if: _root.header.refcount_bits < 8
        doc: Refcounts of 1, 2 or 4 bits, least significant bits of a byte first.
  snapshot:
    -webide-representation: 'id {id_str} "{name}"'
    doc: One snapshot table entry.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#snapshots
    params:
      - id: idx
        type: u4
        doc: Index of the entry in the table.
    seq:
      - id: ofs_l1_table
        -orig-id: l1_table_offset
        type: u8
        valid:
          expr: _ % _root.header.cluster_size == 0
        doc: Offset of the snapshot's L1 table, cluster-aligned.
      - id: num_l1_entries
        -orig-id: l1_size
        type: u4
        doc: Number of entries in that L1 table.
      - id: len_id_str
        -orig-id: id_str_size
        type: u2
        doc: Length of the ID.
      - id: len_name
        -orig-id: name_size
        type: u2
        doc: Length of the name.
      - id: date_sec
        type: u4
        doc: When the snapshot was taken, seconds since the Epoch.
      - id: date_nsec
        type: u4
        doc: Nanoseconds of that time.
      - id: vm_clock_nsec
        type: u8
        doc: Guest run time at the snapshot, nanoseconds.
      - id: len_vm_state_32
        -orig-id: vm_state_size
        type: u4
        doc: Size of the VM state (see `len_vm_state`).
      - id: len_extra_data
        -orig-id: extra_data_size
        type: u4
        valid:
          expr: _root.header.version < 3 or _ >= 16
        doc: Size of the extra data, at least 16 in version 3.
      - id: extra_data
        size: len_extra_data
        type: snapshot_extra_data
        doc: The extra data.
      - id: id_str
        type: str
        size: len_id_str
        doc: Unique ID of the snapshot.
      - id: name
        type: str
        size: len_name
        doc: Name of the snapshot.
      - id: padding
        size: (8 - (40 + len_extra_data + len_id_str + len_name) % 8) % 8
        if: idx + 1 < _root.header.num_snapshots
        doc: |
          Padding to a multiple of 8 bytes; QEMU writes none after the last
          entry.
    instances:
      len_vm_state:
        value: 'len_extra_data >= 8 ? extra_data.len_vm_state_64 : len_vm_state_32'
        doc: Size of the VM state in bytes.
      l1_table:
        io: _root._io
        pos: ofs_l1_table
        size: num_l1_entries * 8
        type: l1_table
        doc: The snapshot's L1 table.
  snapshot_extra_data:
    -webide-representation: 'extra data'
    doc: The extra data of a snapshot, each field present if long enough.
    doc-ref: https://www.qemu.org/docs/master/interop/qcow2.html#snapshots
    seq:
      - id: len_vm_state_64
        -orig-id: vm_state_size_large
        type: u8
        if: _io.size >= 8
        doc: Size of the VM state.
      - id: len_virtual_disk
        -orig-id: disk_size
        type: u8
        if: _io.size >= 16
        doc: Size of the virtual disk at the snapshot.
      - id: icount
        type: s8
        if: _io.size >= 24
        doc: Record/replay instruction count, -1 if disabled.
      - id: unknown
        size-eos: true
        doc: Extra data of later versions of the spec.
enums:
  crypt_method:
    0:
      id: none
      doc: Not encrypted.
    1:
      id: aes
      doc: AES-256-CBC with plain64 IVs (legacy).
    2:
      id: luks
      doc: LUKS, described by the full disk encryption header.
  compression_type:
    0:
      id: zlib
      -orig-id: deflate
      doc: Raw deflate (RFC 1951), the default.
    1:
      id: zstd
      doc: Zstandard.
  header_extension_type:
    0x00000000:
      id: end
      doc: End of the header extensions.
    0xe2792aca:
      id: backing_file_format
      doc: Backing file format name.
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
      doc: External data file name.
  feature_type:
    0:
      id: incompatible
      doc: incompatible_features.
    1:
      id: compatible
      doc: compatible_features.
    2:
      id: autoclear
      doc: autoclear_features.
  bitmap_type:
    1:
      id: dirty_tracking
      doc: Dirty tracking bitmap.
  cluster_type:
    0:
      id: unallocated
      doc: No host storage; reads from the backing file, or as zeros.
    1:
      id: zero_plain
      doc: Reads as zeros, no host cluster.
    2:
      id: zero_allocated
      doc: Reads as zeros, with a preallocated host cluster.
    3:
      id: normal
      doc: Stored in a host cluster.
    4:
      id: compressed
      doc: Stored compressed.
  cluster_status:
    0:
      id: unallocated
      doc: Reads from the backing file, or as zeros.
    1:
      id: zero
      doc: Reads as zeros.
    2:
      id: data
      doc: Reads from its host cluster.
    3:
      id: compressed
      doc: Reads from its compressed data.
    4:
      id: mixed
      doc: Its subclusters read differently.
  subcluster_status:
    0:
      id: unallocated
      doc: Reads from the backing file, or as zeros.
    1:
      id: allocated
      doc: Stored in the host cluster.
    2:
      id: zero
      doc: Reads as zeros.
  luks_key_slot_state:
    0x0000dead:
      id: disabled
      doc: Empty slot.
    0x00ac71f3:
      id: enabled
      doc: Slot holding a key.

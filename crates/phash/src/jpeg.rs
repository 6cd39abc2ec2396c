//! JPEG decoding bit-identical to libjpeg-turbo as Pillow drives it.
//!
//! Peers open JPEGs with Pillow, which decodes through libjpeg-turbo with its default
//! settings: the "islow" integer IDCT, "fancy" (triangle-filter) chroma upsampling and
//! libjpeg's fixed-point YCbCr → RGB tables. The `image` crate's decoder (zune-jpeg)
//! uses a different IDCT, upsampler and colour conversion, so its pixels differ by ±1..4
//! and the pHash of a JPEG can flip bits. This module reproduces libjpeg-turbo's
//! integer arithmetic exactly for the JPEGs that matter here:
//!
//! - baseline, extended (8-bit, Huffman) and progressive (Huffman) frames;
//! - grayscale, YCbCr, RGB, CMYK and YCCK images with any sampling factors
//!   libjpeg-turbo accepts (2:1 fancy upsampling, other integral ratios replicated);
//! - restart intervals.
//!
//! CMYK/YCCK files come back as the RGB image Pillow's CMYK → RGB conversion gives
//! (what `convert("L")` goes through). Anything else — arithmetic coding, lossless,
//! 12-bit, 2-component files, and progressive
//! files whose scans leave low-frequency coefficients unrefined (where libjpeg-turbo
//! applies block smoothing) — is [`JpegError::Unsupported`]; callers fall back to the
//! `image` crate for those, which is close but not bit-exact.

use image::{DynamicImage, GrayImage, RgbImage};

/// Why a JPEG could not be decoded exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JpegError {
    /// The data does not start with the SOI marker (`FF D8`).
    #[error("not a JPEG file (no SOI marker)")]
    NotJpeg,
    /// A valid JPEG this decoder does not reproduce exactly; names the feature.
    #[error("unsupported JPEG: {0}")]
    Unsupported(&'static str),
    /// Corrupt or truncated JPEG data; says what is wrong.
    #[error("malformed JPEG: {0}")]
    Malformed(&'static str),
}

type Result<T> = std::result::Result<T, JpegError>;

/// Natural (row-major) index of the k-th coefficient in zigzag order.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// `jpeg_natural_order` including libjpeg's 16 guard entries: a corrupt run length that
/// overshoots the block writes coefficient 63, as libjpeg does.
fn natural(k: usize) -> usize {
    ZIGZAG[k.min(63)]
}

/// Decode a JPEG the way Pillow's `Image.open(...)` + `load()` does: grayscale files to
/// an "L" image, colour files to "RGB".
pub fn decode_jpeg(data: &[u8]) -> Result<DynamicImage> {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err(JpegError::NotJpeg);
    }
    let mut decoder = Decoder::default();
    let mut pos = 2;
    while let Some((marker, after)) = next_marker(data, pos) {
        pos = after;
        match marker {
            0xD9 => break,                         // EOI
            0xD0..=0xD7 | 0x01 | 0xD8 => continue, // stray RSTn, TEM, repeated SOI: no payload
            _ => {}
        }
        let len = usize::from(
            read_u16(data, pos).ok_or(JpegError::Malformed("truncated marker segment"))?,
        );
        let segment = data
            .get(pos + 2..pos + len)
            .filter(|_| len >= 2)
            .ok_or(JpegError::Malformed("truncated marker segment"))?;
        pos += len;
        match marker {
            0xC0 | 0xC1 => decoder.frame = Some(Frame::parse(segment, false)?),
            0xC2 => decoder.frame = Some(Frame::parse(segment, true)?),
            0xC3 | 0xC5..=0xC7 | 0xCB | 0xCD..=0xCF => {
                return Err(JpegError::Unsupported("lossless or hierarchical JPEG"));
            }
            0xC9 | 0xCA => return Err(JpegError::Unsupported("arithmetic-coded JPEG")),
            0xC4 => decoder.parse_dht(segment)?,
            0xCC => return Err(JpegError::Unsupported("arithmetic-coded JPEG")),
            0xDB => decoder.parse_dqt(segment)?,
            0xDD => {
                decoder.restart_interval = usize::from(
                    read_u16(segment, 0).ok_or(JpegError::Malformed("short DRI segment"))?,
                );
            }
            0xDA => pos = decoder.decode_scan(segment, data, pos)?,
            0xE0 => decoder.saw_jfif |= segment.starts_with(b"JFIF\0"),
            0xEE if segment.starts_with(b"Adobe") && segment.len() >= 12 => {
                decoder.adobe_transform = Some(segment[11])
            }
            _ => {} // APPn, COM, DNL, ...: nothing that changes the pixels
        }
    }
    decoder.finish()
}

fn read_u16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

/// The next marker at or after `pos` (skipping stray bytes and fill `0xFF`s, as
/// libjpeg does): `(marker code, position after the two marker bytes)`.
fn next_marker(data: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    loop {
        while *data.get(pos)? != 0xFF {
            pos += 1;
        }
        while *data.get(pos)? == 0xFF {
            pos += 1;
        }
        let code = data[pos];
        pos += 1;
        if code != 0 {
            return Some((code, pos));
        }
    }
}

#[derive(Default)]
struct Decoder {
    frame: Option<Frame>,
    quant: [Option<[u16; 64]>; 4],
    dc_tables: [Option<Huffman>; 4],
    ac_tables: [Option<Huffman>; 4],
    restart_interval: usize,
    saw_jfif: bool,
    adobe_transform: Option<u8>,
    scans: usize,
}

struct Frame {
    progressive: bool,
    width: usize,
    height: usize,
    max_h: usize,
    max_v: usize,
    mcus_x: usize,
    mcus_y: usize,
    components: Vec<Component>,
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant_index: usize,
    /// Quantisation table latched when the component's first scan starts (libjpeg).
    quant: Option<[u16; 64]>,
    /// Blocks with data: `ceil(width * h / max_h / 8)` by the same for height.
    width_in_blocks: usize,
    height_in_blocks: usize,
    /// Allocated blocks per row / rows (padded to whole MCUs).
    blocks_x: usize,
    blocks_y: usize,
    /// Samples carrying image data after downsampling (libjpeg `downsampled_width`).
    sampled_width: usize,
    sampled_height: usize,
    coefficients: Vec<[i16; 64]>,
    /// Successive-approximation bit position reached per zigzag index; -1 if never sent.
    coef_bits: [i32; 64],
}

impl Frame {
    fn parse(segment: &[u8], progressive: bool) -> Result<Self> {
        let malformed = JpegError::Malformed("short SOF segment");
        let (&precision, rest) = segment.split_first().ok_or(malformed.clone())?;
        if precision != 8 {
            return Err(JpegError::Unsupported("sample precision other than 8 bits"));
        }
        let height = usize::from(read_u16(rest, 0).ok_or(malformed.clone())?);
        let width = usize::from(read_u16(rest, 2).ok_or(malformed.clone())?);
        let count = usize::from(*rest.get(4).ok_or(malformed.clone())?);
        if height == 0 {
            return Err(JpegError::Unsupported("height defined by a DNL marker"));
        }
        if width == 0 || count == 0 {
            return Err(JpegError::Malformed("empty frame"));
        }
        let specs = rest.get(5..5 + 3 * count).ok_or(malformed)?;
        let mut components = Vec::with_capacity(count);
        for spec in specs.chunks_exact(3) {
            let (h, v) = (usize::from(spec[1] >> 4), usize::from(spec[1] & 15));
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
                return Err(JpegError::Malformed("sampling factor outside 1..=4"));
            }
            if spec[2] > 3 {
                return Err(JpegError::Malformed("quantisation table index above 3"));
            }
            components.push(Component {
                id: spec[0],
                h,
                v,
                quant_index: usize::from(spec[2]),
                quant: None,
                width_in_blocks: 0,
                height_in_blocks: 0,
                blocks_x: 0,
                blocks_y: 0,
                sampled_width: 0,
                sampled_height: 0,
                coefficients: Vec::new(),
                coef_bits: [-1; 64],
            });
        }
        let max_h = components.iter().map(|c| c.h).max().unwrap_or(1);
        let max_v = components.iter().map(|c| c.v).max().unwrap_or(1);
        let (mcus_x, mcus_y) = (width.div_ceil(8 * max_h), height.div_ceil(8 * max_v));
        for c in &mut components {
            c.width_in_blocks = (width * c.h).div_ceil(8 * max_h);
            c.height_in_blocks = (height * c.v).div_ceil(8 * max_v);
            c.sampled_width = (width * c.h).div_ceil(max_h);
            c.sampled_height = (height * c.v).div_ceil(max_v);
            c.blocks_x = mcus_x * c.h;
            c.blocks_y = mcus_y * c.v;
            c.coefficients = vec![[0; 64]; c.blocks_x * c.blocks_y];
        }
        Ok(Self {
            progressive,
            width,
            height,
            max_h,
            max_v,
            mcus_x,
            mcus_y,
            components,
        })
    }
}

impl Decoder {
    fn parse_dqt(&mut self, mut segment: &[u8]) -> Result<()> {
        while let Some((&pq_tq, rest)) = segment.split_first() {
            let (precision, index) = (pq_tq >> 4, usize::from(pq_tq & 15));
            if index > 3 || precision > 1 {
                return Err(JpegError::Malformed("bad DQT table"));
            }
            let size = if precision == 0 { 64 } else { 128 };
            let values = rest
                .get(..size)
                .ok_or(JpegError::Malformed("short DQT segment"))?;
            let mut table = [0u16; 64];
            for (k, &natural) in ZIGZAG.iter().enumerate() {
                table[natural] = if precision == 0 {
                    u16::from(values[k])
                } else {
                    u16::from_be_bytes([values[2 * k], values[2 * k + 1]])
                };
            }
            self.quant[index] = Some(table);
            segment = &rest[size..];
        }
        Ok(())
    }

    fn parse_dht(&mut self, mut segment: &[u8]) -> Result<()> {
        while let Some((&tc_th, rest)) = segment.split_first() {
            let (class, index) = (tc_th >> 4, usize::from(tc_th & 15));
            if class > 1 || index > 3 {
                return Err(JpegError::Malformed("bad DHT table"));
            }
            let counts: [u8; 16] = rest
                .get(..16)
                .and_then(|c| c.try_into().ok())
                .ok_or(JpegError::Malformed("short DHT segment"))?;
            let total: usize = counts.iter().map(|&n| usize::from(n)).sum();
            let symbols = rest
                .get(16..16 + total)
                .ok_or(JpegError::Malformed("short DHT segment"))?;
            let table = Huffman::new(&counts, symbols)?;
            if class == 0 {
                self.dc_tables[index] = Some(table);
            } else {
                self.ac_tables[index] = Some(table);
            }
            segment = &rest[16 + total..];
        }
        Ok(())
    }

    /// Parse SOS and decode the entropy-coded data after it; returns where it ends.
    fn decode_scan(&mut self, segment: &[u8], data: &[u8], pos: usize) -> Result<usize> {
        let frame = self
            .frame
            .as_mut()
            .ok_or(JpegError::Malformed("scan before frame header"))?;
        let malformed = JpegError::Malformed("short SOS segment");
        let count = usize::from(*segment.first().ok_or(malformed.clone())?);
        let specs = segment.get(1..1 + 2 * count).ok_or(malformed.clone())?;
        let tail = segment
            .get(1 + 2 * count..1 + 2 * count + 3)
            .ok_or(malformed)?;
        let (ss, se, ah, al) = (
            usize::from(tail[0]),
            usize::from(tail[1]),
            tail[2] >> 4,
            tail[2] & 15,
        );
        if count == 0 || count > 4 {
            return Err(JpegError::Malformed("scan component count outside 1..=4"));
        }

        let mut members = Vec::with_capacity(count);
        for spec in specs.chunks_exact(2) {
            let index = frame
                .components
                .iter()
                .position(|c| c.id == spec[0])
                .ok_or(JpegError::Malformed("scan names an unknown component"))?;
            members.push(ScanMember {
                index,
                dc: usize::from(spec[1] >> 4),
                ac: usize::from(spec[1] & 15),
            });
        }
        if frame.progressive {
            let valid = if ss == 0 {
                se == 0
            } else {
                count == 1 && ss <= se && se <= 63
            };
            if !valid || ah > 13 || al > 13 {
                return Err(JpegError::Malformed("bad progressive scan parameters"));
            }
        }
        for m in &members {
            let component = &mut frame.components[m.index];
            if component.quant.is_none() {
                let table = self.quant[component.quant_index];
                component.quant = Some(table.ok_or(JpegError::Malformed(
                    "scan uses an undefined quantisation table",
                ))?);
            }
            let (first, last) = if frame.progressive { (ss, se) } else { (0, 63) };
            for bits in &mut component.coef_bits[first..=last] {
                *bits = i32::from(al);
            }
        }
        let dc_needed = !frame.progressive || (ss == 0 && ah == 0);
        let ac_needed = !frame.progressive || ss > 0;
        let lookup =
            |tables: &[Option<Huffman>; 4], i: usize, needed: bool| -> Result<Option<Huffman>> {
                if !needed {
                    return Ok(None);
                }
                tables
                    .get(i)
                    .cloned()
                    .flatten()
                    .map(Some)
                    .ok_or(JpegError::Malformed("scan uses an undefined Huffman table"))
            };
        let mut tables = Vec::with_capacity(count);
        for m in &members {
            tables.push((
                lookup(&self.dc_tables, m.dc, dc_needed)?,
                lookup(&self.ac_tables, m.ac, ac_needed)?,
            ));
        }

        let scan = Scan {
            members,
            tables,
            ss,
            se,
            ah,
            al,
            progressive: frame.progressive,
        };
        let mut bits = BitReader::new(data, pos);
        scan.decode(frame, &mut bits, self.restart_interval);
        if bits.at_end {
            // Pillow refuses truncated files ("image file is truncated").
            return Err(JpegError::Malformed("truncated image data"));
        }
        self.scans += 1;
        Ok(bits.resume_position())
    }

    fn finish(mut self) -> Result<DynamicImage> {
        let frame = self
            .frame
            .take()
            .ok_or(JpegError::Malformed("no frame header"))?;
        if self.scans == 0 {
            return Err(JpegError::Malformed("no image data"));
        }
        if frame.progressive && block_smoothing_applies(&frame) {
            return Err(JpegError::Unsupported(
                "progressive JPEG that libjpeg would block-smooth",
            ));
        }
        let planes: Vec<Plane> = frame.components.iter().map(idct_component).collect();
        let (w, h) = (frame.width, frame.height);
        match frame.components.len() {
            1 => {
                let plane = &planes[0];
                let mut out = Vec::with_capacity(w * h);
                for y in 0..h {
                    out.extend_from_slice(&plane.row(y)[..w]);
                }
                let img = GrayImage::from_raw(w as u32, h as u32, out)
                    .ok_or(JpegError::Malformed("image too large"))?;
                Ok(DynamicImage::ImageLuma8(img))
            }
            3 => {
                let ycc = self.colour_space_is_ycc(&frame);
                let full: Vec<Vec<u8>> = frame
                    .components
                    .iter()
                    .zip(&planes)
                    .map(|(c, p)| upsample(&frame, c, p))
                    .collect();
                let mut out = vec![0u8; w * h * 3];
                let tables = YccTables::new();
                for (i, px) in out.chunks_exact_mut(3).enumerate() {
                    let (a, b, c) = (full[0][i], full[1][i], full[2][i]);
                    let rgb = if ycc { tables.rgb(a, b, c) } else { [a, b, c] };
                    px.copy_from_slice(&rgb);
                }
                let img = RgbImage::from_raw(w as u32, h as u32, out)
                    .ok_or(JpegError::Malformed("image too large"))?;
                Ok(DynamicImage::ImageRgb8(img))
            }
            4 => {
                // Pillow opens these as "CMYK" (raw mode "CMYK;I": Adobe's inverted
                // samples) and converts CMYK → RGB → L; return that RGB image.
                let ycck = self.adobe_transform.is_some_and(|t| t != 0);
                let full: Vec<Vec<u8>> = frame
                    .components
                    .iter()
                    .zip(&planes)
                    .map(|(c, p)| upsample(&frame, c, p))
                    .collect();
                let tables = YccTables::new();
                let mut out = vec![0u8; w * h * 3];
                for (i, px) in out.chunks_exact_mut(3).enumerate() {
                    let (a, b, c, k) = (full[0][i], full[1][i], full[2][i], full[3][i]);
                    // libjpeg's `ycck_cmyk_convert`: YCC → RGB, then complemented.
                    let [c, m, y] = if ycck {
                        tables.rgb(a, b, c).map(|v| 255 - v)
                    } else {
                        [a, b, c]
                    };
                    px.copy_from_slice(&pillow_cmyk_inverted_to_rgb([c, m, y, k]));
                }
                let img = RgbImage::from_raw(w as u32, h as u32, out)
                    .ok_or(JpegError::Malformed("image too large"))?;
                Ok(DynamicImage::ImageRgb8(img))
            }
            _ => Err(JpegError::Unsupported(
                "JPEG with 2 or more than 4 components",
            )),
        }
    }

    /// libjpeg's `default_decompress_parms` guess for three-component files.
    fn colour_space_is_ycc(&self, frame: &Frame) -> bool {
        if self.saw_jfif {
            return true;
        }
        if let Some(transform) = self.adobe_transform {
            return transform != 0;
        }
        let ids: Vec<u8> = frame.components.iter().map(|c| c.id).collect();
        ids != [b'R', b'G', b'B']
    }
}

/// Pillow's "CMYK;I" unpacking (each sample complemented) followed by its `cmyk2rgb`.
fn pillow_cmyk_inverted_to_rgb(decoded: [u8; 4]) -> [u8; 3] {
    let [c, m, y, k] = decoded.map(|v| i32::from(255 - v));
    let nk = 255 - k;
    // MULDIV255(a, b) = ((a * b + 128) >> 8 + a * b + 128) >> 8
    let muldiv255 = |a: i32| {
        let t = a * nk + 128;
        ((t >> 8) + t) >> 8
    };
    [c, m, y].map(|v| (nk - muldiv255(v)).clamp(0, 255) as u8)
}

/// libjpeg-turbo's `smoothing_ok`: a fully decoded progressive image is smoothed only
/// if some of its first ten coefficients (zigzag order) were never fully refined.
fn block_smoothing_applies(frame: &Frame) -> bool {
    // Natural positions of the quantisers libjpeg-turbo checks for zero.
    const CHECKED: [usize; 10] = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24];
    let mut useful = false;
    for c in &frame.components {
        let Some(quant) = &c.quant else { return false };
        if CHECKED.iter().any(|&i| quant[i] == 0) || c.coef_bits[0] < 0 {
            return false;
        }
        useful |= c.coef_bits[1..10].iter().any(|&b| b != 0);
    }
    useful
}

#[derive(Clone)]
struct ScanMember {
    index: usize,
    dc: usize,
    ac: usize,
}

struct Scan {
    members: Vec<ScanMember>,
    tables: Vec<(Option<Huffman>, Option<Huffman>)>,
    ss: usize,
    se: usize,
    ah: u8,
    al: u8,
    progressive: bool,
}

impl Scan {
    fn decode(&self, frame: &mut Frame, bits: &mut BitReader<'_>, restart_interval: usize) {
        let mut dc_pred = vec![0i32; self.members.len()];
        let mut eob_run = 0u32;
        let mut until_restart = restart_interval;

        // Interleaved scans go MCU by MCU (each component's h×v blocks in turn);
        // single-component scans go block by block over the component's data blocks.
        let interleaved = self.members.len() > 1;
        let (units_x, units_y) = if interleaved {
            (frame.mcus_x, frame.mcus_y)
        } else {
            let c = &frame.components[self.members[0].index];
            (c.width_in_blocks, c.height_in_blocks)
        };
        for uy in 0..units_y {
            for ux in 0..units_x {
                if restart_interval > 0 {
                    if until_restart == 0 {
                        bits.restart();
                        dc_pred.iter_mut().for_each(|p| *p = 0);
                        eob_run = 0;
                        until_restart = restart_interval;
                    }
                    until_restart -= 1;
                }
                for (slot, (member, pred)) in self.members.iter().zip(&mut dc_pred).enumerate() {
                    let component = &mut frame.components[member.index];
                    let (per_x, per_y) = if interleaved {
                        (component.h, component.v)
                    } else {
                        (1, 1)
                    };
                    for v in 0..per_y {
                        for h in 0..per_x {
                            let (bx, by) = (ux * per_x + h, uy * per_y + v);
                            let block = &mut component.coefficients[by * component.blocks_x + bx];
                            self.decode_block(bits, block, slot, pred, &mut eob_run);
                        }
                    }
                }
            }
        }
    }

    fn decode_block(
        &self,
        bits: &mut BitReader<'_>,
        block: &mut [i16; 64],
        slot: usize,
        dc_pred: &mut i32,
        eob_run: &mut u32,
    ) {
        let (dc, ac) = &self.tables[slot];
        if !self.progressive {
            decode_block_sequential(bits, block, dc.as_ref(), ac.as_ref(), dc_pred);
        } else if self.ss == 0 {
            if self.ah == 0 {
                if let Some(dc) = dc {
                    let size = bits.decode(dc);
                    let diff = bits.receive_extend(size);
                    *dc_pred = dc_pred.wrapping_add(diff);
                    block[0] = dc_pred.wrapping_shl(u32::from(self.al)) as i16;
                }
            } else if bits.bit() != 0 {
                block[0] |= 1 << self.al;
            }
        } else if let Some(ac) = ac {
            if self.ah == 0 {
                self.ac_first(bits, block, ac, eob_run);
            } else {
                self.ac_refine(bits, block, ac, eob_run);
            }
        }
    }

    fn ac_first(
        &self,
        bits: &mut BitReader<'_>,
        block: &mut [i16; 64],
        table: &Huffman,
        eob_run: &mut u32,
    ) {
        if *eob_run > 0 {
            *eob_run -= 1;
            return;
        }
        let mut k = self.ss;
        while k <= self.se {
            let rs = bits.decode(table);
            let (r, s) = (usize::from(rs >> 4), rs & 15);
            if s != 0 {
                k += r;
                let value = bits.receive_extend(s);
                block[natural(k)] = value.wrapping_shl(u32::from(self.al)) as i16;
            } else if r == 15 {
                k += 15;
            } else {
                *eob_run = 1 << r;
                if r > 0 {
                    *eob_run += bits.bits(r as u32);
                }
                *eob_run -= 1;
                break;
            }
            k += 1;
        }
    }

    fn ac_refine(
        &self,
        bits: &mut BitReader<'_>,
        block: &mut [i16; 64],
        table: &Huffman,
        eob_run: &mut u32,
    ) {
        let p1: i16 = 1 << self.al;
        let m1: i16 = -1 << self.al;
        let mut k = self.ss;
        let refine = |bits: &mut BitReader<'_>, coef: &mut i16| {
            if bits.bit() != 0 && (*coef & p1) == 0 {
                *coef = if *coef >= 0 {
                    coef.wrapping_add(p1)
                } else {
                    coef.wrapping_add(m1)
                };
            }
        };
        if *eob_run == 0 {
            while k <= self.se {
                let rs = bits.decode(table);
                let (mut r, s) = (i32::from(rs >> 4), rs & 15);
                let mut value = 0i16;
                if s != 0 {
                    // s must be 1 in a refinement scan; libjpeg only warns otherwise.
                    value = if bits.bit() != 0 { p1 } else { m1 };
                } else if r != 15 {
                    *eob_run = 1 << r;
                    if r > 0 {
                        *eob_run += bits.bits(r as u32);
                    }
                    break;
                }
                // Skip r zero coefficients (refining the non-zero ones passed over),
                // then place the new coefficient.
                while k <= self.se {
                    let coef = &mut block[ZIGZAG[k]];
                    if *coef != 0 {
                        refine(bits, coef);
                    } else {
                        if r == 0 {
                            break;
                        }
                        r -= 1;
                    }
                    k += 1;
                }
                if value != 0 {
                    block[natural(k)] = value;
                }
                k += 1;
            }
        }
        if *eob_run > 0 {
            while k <= self.se {
                let coef = &mut block[ZIGZAG[k]];
                if *coef != 0 {
                    refine(bits, coef);
                }
                k += 1;
            }
            *eob_run -= 1;
        }
    }
}

fn decode_block_sequential(
    bits: &mut BitReader<'_>,
    block: &mut [i16; 64],
    dc: Option<&Huffman>,
    ac: Option<&Huffman>,
    dc_pred: &mut i32,
) {
    if let Some(dc) = dc {
        let size = bits.decode(dc);
        let diff = bits.receive_extend(size);
        *dc_pred = dc_pred.wrapping_add(diff);
        block[0] = *dc_pred as i16;
    }
    let Some(ac) = ac else { return };
    let mut k = 1;
    while k < 64 {
        let rs = bits.decode(ac);
        let (r, s) = (usize::from(rs >> 4), rs & 15);
        if s != 0 {
            k += r;
            block[natural(k)] = bits.receive_extend(s) as i16;
        } else if r != 15 {
            break;
        } else {
            k += 15;
        }
        k += 1;
    }
}

/// Canonical Huffman table with an 8-bit lookup for short codes (jdhuff.c layout).
#[derive(Clone)]
struct Huffman {
    /// `(code length << 8) | symbol` for every 8-bit prefix; 0 if the code is longer.
    fast: [u16; 256],
    /// Largest code of each length (-1 if none); index 17 is a sentinel.
    max_code: [i32; 18],
    /// Symbol index = code + `val_offset[length]`.
    val_offset: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Result<Self> {
        let mut fast = [0u16; 256];
        let mut max_code = [-1i32; 18];
        let mut val_offset = [0i32; 17];
        let (mut code, mut k) = (0i32, 0usize);
        for len in 1..=16 {
            let n = usize::from(counts[len - 1]);
            val_offset[len] = k as i32 - code;
            for _ in 0..n {
                if len <= 8 {
                    let shift = 8 - len;
                    let first = (code as usize) << shift;
                    for entry in &mut fast[first..first + (1 << shift)] {
                        *entry = ((len as u16) << 8) | u16::from(symbols[k]);
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                max_code[len] = code - 1;
            }
            if code > (1 << len) {
                return Err(JpegError::Malformed("bad Huffman table"));
            }
            code <<= 1;
        }
        max_code[17] = i32::MAX;
        Ok(Self {
            fast,
            max_code,
            val_offset,
            symbols: symbols.to_vec(),
        })
    }
}

/// Entropy-coded data reader: removes byte stuffing and, like libjpeg, supplies zero
/// bits once it reaches a marker (corrupt or truncated data decodes as zeros).
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    count: u32,
    at_marker: bool,
    /// The data ended inside the scan (no marker): a truncated file.
    at_end: bool,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            acc: 0,
            count: 0,
            at_marker: false,
            at_end: false,
        }
    }

    fn fill(&mut self) {
        while self.count <= 56 {
            let mut byte = 0u8;
            if !self.at_marker {
                match self.data.get(self.pos) {
                    None => {
                        self.at_marker = true;
                        self.at_end = true;
                    }
                    Some(&0xFF) => match self.data.get(self.pos + 1) {
                        Some(0) => {
                            byte = 0xFF;
                            self.pos += 2;
                        }
                        _ => self.at_marker = true,
                    },
                    Some(&b) => {
                        byte = b;
                        self.pos += 1;
                    }
                }
            }
            self.acc |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        if self.count < n {
            self.fill();
        }
        let value = (self.acc >> (64 - n)) as u32;
        self.acc <<= n;
        self.count -= n;
        value
    }

    fn bit(&mut self) -> u32 {
        self.bits(1)
    }

    fn decode(&mut self, table: &Huffman) -> u8 {
        if self.count < 16 {
            self.fill();
        }
        let entry = table.fast[(self.acc >> 56) as usize];
        if entry != 0 {
            let len = u32::from(entry >> 8);
            self.acc <<= len;
            self.count -= len;
            return entry as u8;
        }
        let mut code = self.bits(8) as i32;
        let mut len = 8;
        while code > table.max_code[len] {
            code = (code << 1) | self.bit() as i32;
            len += 1;
        }
        if len > 16 {
            return 0; // corrupt data: libjpeg also yields symbol 0 (with a warning)
        }
        let index = (code + table.val_offset[len]) as usize;
        table.symbols.get(index).copied().unwrap_or(0)
    }

    /// JPEG `EXTEND(RECEIVE(s))`.
    fn receive_extend(&mut self, s: u8) -> i32 {
        let s = u32::from(s & 15);
        if s == 0 {
            return 0;
        }
        let v = self.bits(s) as i32;
        if v < (1 << (s - 1)) {
            v - (1 << s) + 1
        } else {
            v
        }
    }

    /// Drop buffered bits and consume the RSTn marker that should be next.
    fn restart(&mut self) {
        self.acc = 0;
        self.count = 0;
        if let Some((marker, after)) = next_marker(self.data, self.pos)
            && (0xD0..=0xD7).contains(&marker)
        {
            self.pos = after;
        }
        self.at_marker = false;
    }

    /// Where marker parsing resumes: the marker that ended the scan (or end of data).
    fn resume_position(&self) -> usize {
        self.pos
    }
}

/// One component's samples after the IDCT (padded to whole blocks).
struct Plane {
    width: usize,
    samples: Vec<u8>,
}

impl Plane {
    fn row(&self, y: usize) -> &[u8] {
        &self.samples[y * self.width..(y + 1) * self.width]
    }
}

fn idct_component(c: &Component) -> Plane {
    // No scan ever covered the component: libjpeg leaves its multiplier table zeroed.
    let quant = c.quant.unwrap_or([0; 64]);
    let width = c.blocks_x * 8;
    let mut samples = vec![0u8; width * c.blocks_y * 8];
    for by in 0..c.blocks_y {
        for bx in 0..c.blocks_x {
            let out = &mut samples[by * 8 * width + bx * 8..];
            idct_islow(&c.coefficients[by * c.blocks_x + bx], &quant, out, width);
        }
    }
    Plane { width, samples }
}

/// libjpeg-turbo's `jpeg_idct_islow`: dequantise and inverse-DCT one block (13-bit
/// fixed-point constants, two passes, libjpeg's rounding and range limiting).
fn idct_islow(coef: &[i16; 64], quant: &[u16; 64], out: &mut [u8], stride: usize) {
    const CONST_BITS: u32 = 13;
    const PASS1_BITS: u32 = 2;
    const FIX_0_298631336: i64 = 2446;
    const FIX_0_390180644: i64 = 3196;
    const FIX_0_541196100: i64 = 4433;
    const FIX_0_765366865: i64 = 6270;
    const FIX_0_899976223: i64 = 7373;
    const FIX_1_175875602: i64 = 9633;
    const FIX_1_501321110: i64 = 12299;
    const FIX_1_847759065: i64 = 15137;
    const FIX_1_961570560: i64 = 16069;
    const FIX_2_053119869: i64 = 16819;
    const FIX_2_562915447: i64 = 20995;
    const FIX_3_072711026: i64 = 25172;

    fn descale(x: i64, n: u32) -> i64 {
        (x + (1 << (n - 1))) >> n
    }
    /// The shared even/odd butterfly; returns the eight outputs before descaling.
    fn butterfly(x: [i64; 8]) -> [i64; 8] {
        let (z2, z3) = (x[2], x[6]);
        let z1 = (z2 + z3) * FIX_0_541196100;
        let tmp2 = z1 + z3 * -FIX_1_847759065;
        let tmp3 = z1 + z2 * FIX_0_765366865;
        let tmp0 = (x[0] + x[4]) << CONST_BITS;
        let tmp1 = (x[0] - x[4]) << CONST_BITS;
        let (tmp10, tmp13, tmp11, tmp12) = (tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2);

        let (mut t3, mut t2, mut t1, mut t0) = (x[1], x[3], x[5], x[7]);
        let (mut z4, mut z3, mut z2, mut z1) = (t1 + t3, t0 + t2, t1 + t2, t0 + t3);
        let z5 = (z3 + z4) * FIX_1_175875602;
        t3 *= FIX_1_501321110;
        t2 *= FIX_3_072711026;
        t1 *= FIX_2_053119869;
        t0 *= FIX_0_298631336;
        z4 = z4 * -FIX_0_390180644 + z5;
        z3 = z3 * -FIX_1_961570560 + z5;
        z1 *= -FIX_0_899976223;
        z2 *= -FIX_2_562915447;
        t3 += z1 + z4;
        t2 += z2 + z3;
        t1 += z2 + z4;
        t0 += z1 + z3;
        [
            tmp10 + t3,
            tmp11 + t2,
            tmp12 + t1,
            tmp13 + t0,
            tmp13 - t0,
            tmp12 - t1,
            tmp11 - t2,
            tmp10 - t3,
        ]
    }
    /// libjpeg's post-IDCT range limit: wrap to 10 bits, re-centre, clamp.
    fn range_limit(x: i64) -> u8 {
        let t = (x & 1023) as i32;
        let signed = if t >= 512 { t - 1024 } else { t };
        (signed + 128).clamp(0, 255) as u8
    }

    let mut ws = [0i64; 64];
    for col in 0..8 {
        let q = |row: usize| i64::from(coef[row * 8 + col]) * i64::from(quant[row * 8 + col]);
        if (1..8).all(|row| coef[row * 8 + col] == 0) {
            // Same value the full computation gives; libjpeg takes this shortcut too.
            let dc = q(0) << PASS1_BITS;
            for row in 0..8 {
                ws[row * 8 + col] = dc;
            }
            continue;
        }
        let result = butterfly(std::array::from_fn(q));
        for (row, value) in result.into_iter().enumerate() {
            // libjpeg stores the first pass in `int`.
            ws[row * 8 + col] = i64::from(descale(value, CONST_BITS - PASS1_BITS) as i32);
        }
    }
    for row in 0..8 {
        let w: [i64; 8] = std::array::from_fn(|i| ws[row * 8 + i]);
        let line = &mut out[row * stride..row * stride + 8];
        if w[1..].iter().all(|&v| v == 0) {
            line.fill(range_limit(descale(w[0], PASS1_BITS + 3)));
            continue;
        }
        for (px, value) in line.iter_mut().zip(butterfly(w)) {
            *px = range_limit(descale(value, CONST_BITS + PASS1_BITS + 3));
        }
    }
}

/// Upsample one component to the full image size exactly as libjpeg-turbo's
/// `jdsample.c` does with `do_fancy_upsampling` (its default, which Pillow keeps).
fn upsample(frame: &Frame, c: &Component, plane: &Plane) -> Vec<u8> {
    let (w, h) = (frame.width, frame.height);
    let (sw, sh) = (c.sampled_width, c.sampled_height);
    let (h_out, v_out) = (frame.max_h, frame.max_v);
    let mut out = vec![0u8; w * h];
    // Context rows: libjpeg duplicates the first and last real rows at the edges.
    let row = |y: isize| plane.row(y.clamp(0, sh as isize - 1) as usize);

    if c.h == h_out && c.v == v_out {
        for y in 0..h {
            out[y * w..(y + 1) * w].copy_from_slice(&plane.row(y)[..w]);
        }
    } else if c.h * 2 == h_out && c.v == v_out {
        let mut line = vec![0u8; 2 * sw];
        for y in 0..h {
            if sw > 2 {
                h2v1_fancy(plane.row(y), sw, &mut line);
            } else {
                replicate(plane.row(y), sw, 2, &mut line);
            }
            out[y * w..(y + 1) * w].copy_from_slice(&line[..w]);
        }
    } else if c.h == h_out && c.v * 2 == v_out {
        // h1v2 fancy: vertical triangle filter, biases 1 (upper) and 2 (lower).
        for y in 0..h {
            let (near, far, bias) = if y % 2 == 0 {
                (row((y / 2) as isize), row((y / 2) as isize - 1), 1)
            } else {
                (row((y / 2) as isize), row((y / 2) as isize + 1), 2)
            };
            for (x, px) in out[y * w..(y + 1) * w].iter_mut().enumerate() {
                *px = ((u32::from(near[x]) * 3 + u32::from(far[x]) + bias) >> 2) as u8;
            }
        }
    } else if c.h * 2 == h_out && c.v * 2 == v_out {
        let mut line = vec![0u8; 2 * sw];
        for y in 0..h {
            let in_row = (y / 2) as isize;
            if sw > 2 {
                let far = if y % 2 == 0 {
                    row(in_row - 1)
                } else {
                    row(in_row + 1)
                };
                h2v2_fancy(row(in_row), far, sw, &mut line);
            } else {
                replicate(row(in_row), sw, 2, &mut line);
            }
            out[y * w..(y + 1) * w].copy_from_slice(&line[..w]);
        }
    } else {
        // Generic integral factors: box replication (libjpeg's `int_upsample`).
        // libjpeg rejects non-integral ratios; treat them the same way, rounding down.
        let (hx, vx) = ((h_out / c.h).max(1), (v_out / c.v).max(1));
        for y in 0..h {
            let src = plane.row((y / vx).min(plane.samples.len() / plane.width - 1));
            for (x, px) in out[y * w..(y + 1) * w].iter_mut().enumerate() {
                *px = src[(x / hx).min(plane.width - 1)];
            }
        }
    }
    out
}

fn replicate(src: &[u8], sw: usize, factor: usize, out: &mut [u8]) {
    for (x, px) in out.iter_mut().enumerate().take(sw * factor) {
        *px = src[x / factor];
    }
}

/// `h2v1_fancy_upsample`: 3/4 nearer + 1/4 further sample, biases alternating 1 and 2.
fn h2v1_fancy(src: &[u8], sw: usize, out: &mut [u8]) {
    let s = |i: usize| u32::from(src[i]);
    out[0] = src[0];
    out[1] = ((s(0) * 3 + s(1) + 2) >> 2) as u8;
    for i in 1..sw - 1 {
        let v = s(i) * 3;
        out[2 * i] = ((v + s(i - 1) + 1) >> 2) as u8;
        out[2 * i + 1] = ((v + s(i + 1) + 2) >> 2) as u8;
    }
    let last = sw - 1;
    out[2 * last] = ((s(last) * 3 + s(last - 1) + 1) >> 2) as u8;
    out[2 * last + 1] = src[last];
}

/// `h2v2_fancy_upsample`: the triangle filter in both directions (9/16, 3/16, 3/16,
/// 1/16), with biases 8 and 7 alternating.
fn h2v2_fancy(near: &[u8], far: &[u8], sw: usize, out: &mut [u8]) {
    let colsum = |i: usize| u32::from(near[i]) * 3 + u32::from(far[i]);
    let mut this = colsum(0);
    let mut next = colsum(1);
    out[0] = ((this * 4 + 8) >> 4) as u8;
    out[1] = ((this * 3 + next + 7) >> 4) as u8;
    let mut last = this;
    this = next;
    for i in 1..sw - 1 {
        next = colsum(i + 1);
        out[2 * i] = ((this * 3 + last + 8) >> 4) as u8;
        out[2 * i + 1] = ((this * 3 + next + 7) >> 4) as u8;
        last = this;
        this = next;
    }
    let i = sw - 1;
    out[2 * i] = ((this * 3 + last + 8) >> 4) as u8;
    out[2 * i + 1] = ((this * 4 + 7) >> 4) as u8;
}

/// libjpeg's `build_ycc_rgb_table` (16-bit fixed point) and `ycc_rgb_convert`.
struct YccTables {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i32; 256],
    cb_g: [i32; 256],
}

impl YccTables {
    fn new() -> Self {
        const SCALEBITS: u32 = 16;
        const ONE_HALF: i32 = 1 << (SCALEBITS - 1);
        // FIX(x) = (int)(x * 65536 + 0.5)
        const FIX_1_40200: i32 = 91881;
        const FIX_1_77200: i32 = 116130;
        const FIX_0_71414: i32 = 46802;
        const FIX_0_34414: i32 = 22554;
        let x = |i: usize| i as i32 - 128;
        Self {
            cr_r: std::array::from_fn(|i| (FIX_1_40200 * x(i) + ONE_HALF) >> SCALEBITS),
            cb_b: std::array::from_fn(|i| (FIX_1_77200 * x(i) + ONE_HALF) >> SCALEBITS),
            cr_g: std::array::from_fn(|i| -FIX_0_71414 * x(i)),
            cb_g: std::array::from_fn(|i| -FIX_0_34414 * x(i) + ONE_HALF),
        }
    }

    fn rgb(&self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let y = i32::from(y);
        let (cb, cr) = (usize::from(cb), usize::from(cr));
        let clamp = |v: i32| v.clamp(0, 255) as u8;
        [
            clamp(y + self.cr_r[cr]),
            clamp(y + ((self.cb_g[cb] + self.cr_g[cr]) >> 16)),
            clamp(y + self.cb_b[cb]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_constants_match_libjpeg_formula() {
        let fix = |x: f64| (x * 65536.0 + 0.5) as i32;
        assert_eq!(fix(1.40200), 91881);
        assert_eq!(fix(1.77200), 116130);
        assert_eq!(fix(0.71414), 46802);
        assert_eq!(fix(0.34414), 22554);
    }

    #[test]
    fn dc_only_block_is_flat() {
        let mut coef = [0i16; 64];
        coef[0] = 10; // 10 * quant 8 = 80 → 80 / 8 = +10 around mid-grey
        let mut out = [0u8; 64];
        idct_islow(&coef, &[8; 64], &mut out, 8);
        assert!(out.iter().all(|&v| v == 138), "{out:?}");
    }

    #[test]
    fn rejects_non_jpeg_and_truncated_input() {
        assert_eq!(
            decode_jpeg(b"\x89PNG"),
            Err(JpegError::NotJpeg).map(|_: ()| unreachable!())
        );
        assert!(matches!(
            decode_jpeg(b"\xff\xd8\xff\xdb\x00\x43\x00"),
            Err(JpegError::Malformed(_))
        ));
        assert!(matches!(
            decode_jpeg(b"\xff\xd8"),
            Err(JpegError::Malformed(_))
        ));
    }
}

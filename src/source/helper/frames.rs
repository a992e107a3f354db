//! Frame boundaries on a helper's pipe: raw pictures of a fixed size, back to back, no header.
//! That is what `rpicam-vid --codec yuv420 -o -`, `gst-launch-1.0 … ! fdsink` and libcamera's
//! `cam --file` write, so a frame ends after exactly `len` bytes and the stream may only end
//! between frames. Pure: any `Read` in, one frame or an error out.

use std::io::{ErrorKind, Read};

/// What reading one frame gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameRead {
    /// `buf` holds a whole frame.
    Frame,
    /// The stream ended cleanly, between two frames.
    End,
}

/// Fills `buf` with the next frame. An end of stream inside a frame (a helper that died, or
/// wrote something that is not frames of this size) is an error naming how much arrived, with
/// the first bytes shown when they are text (a helper that printed a message on stdout).
pub(crate) fn read_frame(reader: &mut impl Read, buf: &mut [u8]) -> Result<FrameRead, String> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(FrameRead::End),
            Ok(0) => {
                return Err(format!(
                    "the helper's output ended mid-frame ({filled} of {} bytes){}",
                    buf.len(),
                    text_hint(&buf[..filled])
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the helper's output: {e}")),
        }
    }
    Ok(FrameRead::Frame)
}

/// `: "text…"` when `bytes` start with a line of printable text, else nothing.
fn text_hint(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(120)];
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    if !line.is_empty() && line.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!(": {:?}", String::from_utf8_lossy(line))
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its bytes in pieces of `chunk` (pipes deliver partial reads).
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        chunk: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.chunk.min(out.len()).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn trickle(data: Vec<u8>, chunk: usize) -> Trickle {
        Trickle { data, at: 0, chunk }
    }

    #[test]
    fn frames_split_at_their_size_whatever_the_read_sizes() {
        // Three 6-byte frames, each filled with its number, delivered 4 bytes at a time.
        let data: Vec<u8> = (1..=3u8).flat_map(|n| [n; 6]).collect();
        let mut reader = trickle(data, 4);
        let mut buf = [0u8; 6];
        for n in 1..=3u8 {
            assert_eq!(read_frame(&mut reader, &mut buf), Ok(FrameRead::Frame));
            assert_eq!(buf, [n; 6], "frame {n} is whole and in order");
        }
        assert_eq!(read_frame(&mut reader, &mut buf), Ok(FrameRead::End));
    }

    #[test]
    fn an_end_inside_a_frame_is_an_error_naming_the_bytes() {
        let mut reader = trickle(vec![7; 10], 3);
        let mut buf = [0u8; 6];
        assert_eq!(read_frame(&mut reader, &mut buf), Ok(FrameRead::Frame));
        let err = read_frame(&mut reader, &mut buf).unwrap_err();
        assert!(err.contains("mid-frame (4 of 6 bytes)"), "{err}");
    }

    #[test]
    fn text_on_the_frame_pipe_is_shown_in_the_error() {
        let mut reader = trickle(b"ERROR: no cameras available\n".to_vec(), 64);
        let mut buf = [0u8; 1000];
        let err = read_frame(&mut reader, &mut buf).unwrap_err();
        assert!(err.contains("\"ERROR: no cameras available\""), "{err}");
        let mut binary = trickle(vec![0xff, 0x00, 0x12], 64);
        let err = read_frame(&mut binary, &mut buf).unwrap_err();
        assert!(err.ends_with("(3 of 1000 bytes)"), "no text shown: {err}");
    }
}

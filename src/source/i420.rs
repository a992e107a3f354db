//! A checked, mutable view of the three planes of an I420 picture.
//!
//! Writers (the test pattern, the frame stamp) address pixels by row; the view checks the plane
//! sizes once, up front, so those writers can slice rows without further bounds worries.

pub(crate) struct I420Mut<'a> {
    width: usize,
    height: usize,
    y: &'a mut [u8],
    y_stride: usize,
    u: &'a mut [u8],
    v: &'a mut [u8],
    uv_stride: usize,
}

impl<'a> I420Mut<'a> {
    /// A view of planes with the given strides. None if the size is odd or zero, a stride is
    /// shorter than a row, or a plane is too short for `height` rows.
    pub(crate) fn new(
        width: u32,
        height: u32,
        (y, y_stride): (&'a mut [u8], usize),
        (u, v, uv_stride): (&'a mut [u8], &'a mut [u8], usize),
    ) -> Option<Self> {
        let (width, height) = (width as usize, height as usize);
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return None;
        }
        let (chroma_width, chroma_height) = (width / 2, height / 2);
        let fits = |len: usize, stride: usize, row: usize, rows: usize| {
            stride >= row && len >= (rows - 1) * stride + row
        };
        if !fits(y.len(), y_stride, width, height)
            || !fits(u.len(), uv_stride, chroma_width, chroma_height)
            || !fits(v.len(), uv_stride, chroma_width, chroma_height)
        {
            return None;
        }
        Some(I420Mut {
            width,
            height,
            y,
            y_stride,
            u,
            v,
            uv_stride,
        })
    }

    /// A view of a tightly packed I420 buffer (Y, then U, then V; strides `width` and
    /// `width / 2`), the layout of [`crate::source::Frame::data`].
    pub(crate) fn packed(buf: &'a mut [u8], width: u32, height: u32) -> Option<Self> {
        let luma = width as usize * height as usize;
        if buf.len() < luma + luma / 2 {
            return None;
        }
        let (y, chroma) = buf.split_at_mut(luma);
        let (u, v) = chroma.split_at_mut(luma / 4);
        I420Mut::new(
            width,
            height,
            (y, width as usize),
            (u, &mut v[..luma / 4], width as usize / 2),
        )
    }

    pub(crate) fn width(&self) -> usize {
        self.width
    }

    pub(crate) fn height(&self) -> usize {
        self.height
    }

    /// Luma row `row` (`width` bytes). Panics if `row >= height`.
    pub(crate) fn y_row(&mut self, row: usize) -> &mut [u8] {
        assert!(row < self.height, "luma row {row} out of range");
        let start = row * self.y_stride;
        &mut self.y[start..start + self.width]
    }

    /// Chroma rows `row` of U and V (`width / 2` bytes each). Panics if `row >= height / 2`.
    pub(crate) fn uv_rows(&mut self, row: usize) -> (&mut [u8], &mut [u8]) {
        assert!(row < self.height / 2, "chroma row {row} out of range");
        let start = row * self.uv_stride;
        let end = start + self.width / 2;
        (&mut self.u[start..end], &mut self.v[start..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_view_addresses_the_right_bytes() {
        let mut buf = vec![0u8; 4 * 2 * 3 / 2];
        let mut planes = I420Mut::packed(&mut buf, 4, 2).expect("valid size");
        planes.y_row(1).fill(1);
        let (u, v) = planes.uv_rows(0);
        u.fill(2);
        v.fill(3);
        assert_eq!(buf, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3]);
    }

    #[test]
    fn rejects_odd_sizes_and_short_planes() {
        let mut buf = vec![0u8; 64];
        assert!(I420Mut::packed(&mut buf, 3, 2).is_none());
        assert!(I420Mut::packed(&mut buf, 8, 8).is_none());
        let (mut y, mut u, mut v) = (vec![0u8; 16], vec![0u8; 4], vec![0u8; 4]);
        // A stride shorter than the row.
        assert!(I420Mut::new(4, 4, (&mut y, 2), (&mut u, &mut v, 2)).is_none());
        // Strided planes that fit exactly.
        let (mut y, mut u, mut v) = (vec![0u8; 3 * 8 + 4], vec![0u8; 6 + 2], vec![0u8; 8]);
        assert!(I420Mut::new(4, 4, (&mut y, 8), (&mut u, &mut v, 6)).is_some());
    }
}

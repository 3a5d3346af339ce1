//! What crosses the helper's pipes: length-prefixed fields, big-endian, in buffers that are
//! wiped when dropped and sized up front (no reallocation leaves a copy of a secret behind).

use std::collections::BTreeMap;
use std::io::{self, Read};

use zeroize::Zeroizing;

use crate::drivers::FileContent;
use crate::host::atomic::{Contents, Current};
use crate::secrets::SecretBytes;

/// The most the helper reads or answers: every file of a volume at its largest.
const LIMIT: usize = 256 * 1024 * 1024;

type Access = (u32, (Option<u32>, Option<u32>));

/// All of `reader`, into a buffer that doubles by copying into a new wiped one.
pub(super) fn read_all(mut reader: impl Read) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut buffer = Zeroizing::new(vec![0u8; 64 * 1024]);
    let mut len = 0;
    loop {
        if len == buffer.len() {
            if len >= LIMIT {
                return Err(io::Error::other("the volume helper's message is too large"));
            }
            let mut bigger = Zeroizing::new(vec![0u8; len * 2]);
            bigger[..len].copy_from_slice(&buffer[..len]);
            buffer = bigger;
        }
        match reader.read(&mut buffer[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    out.extend_from_slice(&buffer[..len]);
    Ok(out)
}

fn sized(files: usize, bytes: usize) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(Vec::with_capacity(64 + files * 64 + bytes))
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_opt(out: &mut Vec<u8>, value: Option<u32>) {
    out.push(u8::from(value.is_some()));
    put_u32(out, value.unwrap_or(0));
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(bytes);
}

fn put_access(out: &mut Vec<u8>, (mode, (uid, gid)): Access) {
    put_u32(out, mode);
    put_opt(out, uid);
    put_opt(out, gid);
}

pub(super) fn write_request(
    mount: Access,
    data: Access,
    files: &[FileContent],
) -> Zeroizing<Vec<u8>> {
    let bytes = files
        .iter()
        .map(|f| f.path.len() + f.bytes.expose().len())
        .sum();
    let mut out = sized(files.len(), bytes);
    put_access(&mut out, mount);
    put_access(&mut out, data);
    put_u32(&mut out, u32::try_from(files.len()).unwrap_or(u32::MAX));
    for file in files {
        put_bytes(&mut out, file.path.as_bytes());
        put_u32(&mut out, file.mode);
        put_opt(&mut out, file.uid);
        put_opt(&mut out, file.gid);
        put_bytes(&mut out, file.bytes.expose());
    }
    out
}

pub(super) fn encode_contents(contents: Option<&Contents>) -> Zeroizing<Vec<u8>> {
    let Some(contents) = contents else {
        return Zeroizing::new(vec![0]);
    };
    let bytes = contents
        .files
        .iter()
        .map(|(path, c)| path.len() + c.bytes.expose().len())
        .sum::<usize>()
        + contents.data.as_ref().map_or(0, String::len);
    let mut out = sized(contents.files.len(), bytes);
    out.push(1);
    out.push(u8::from(contents.data.is_some()));
    put_bytes(
        &mut out,
        contents.data.as_deref().unwrap_or_default().as_bytes(),
    );
    put_u32(
        &mut out,
        u32::try_from(contents.files.len()).unwrap_or(u32::MAX),
    );
    for (path, current) in &contents.files {
        put_bytes(&mut out, path.as_bytes());
        put_u32(&mut out, current.mode);
        put_u32(&mut out, current.uid);
        put_u32(&mut out, current.gid);
        put_bytes(&mut out, current.bytes.expose());
    }
    out
}

/// Reads fields off a message, in order.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(io::Error::other("the volume helper's message is cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> io::Result<u32> {
        let bytes: [u8; 4] = self.take(4)?.try_into().unwrap_or_default();
        Ok(u32::from_be_bytes(bytes))
    }
    fn opt(&mut self) -> io::Result<Option<u32>> {
        let some = self.u8()? != 0;
        let value = self.u32()?;
        Ok(some.then_some(value))
    }
    fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    fn text(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| io::Error::other("the volume helper's message holds a bad name"))
    }
    fn secret(&mut self) -> io::Result<SecretBytes> {
        Ok(SecretBytes::new(self.bytes()?.to_vec()))
    }
    fn access(&mut self) -> io::Result<Access> {
        Ok((self.u32()?, (self.opt()?, self.opt()?)))
    }
}

pub(super) fn parse_write(message: &[u8]) -> io::Result<(Access, Access, Vec<FileContent>)> {
    let mut fields = Fields(message);
    let mount = fields.access()?;
    let data = fields.access()?;
    let count = fields.u32()?;
    let mut files = Vec::new();
    for _ in 0..count {
        files.push(FileContent {
            path: fields.text()?,
            mode: fields.u32()?,
            uid: fields.opt()?,
            gid: fields.opt()?,
            bytes: fields.secret()?,
        });
    }
    Ok((mount, data, files))
}

pub(super) fn contents(message: &[u8]) -> io::Result<Option<Contents>> {
    let mut fields = Fields(message);
    if fields.u8()? == 0 {
        return Ok(None);
    }
    let has_data = fields.u8()? != 0;
    let data = fields.text()?;
    let count = fields.u32()?;
    let mut files = BTreeMap::new();
    for _ in 0..count {
        let path = fields.text()?;
        let mode = fields.u32()?;
        let uid = fields.u32()?;
        let gid = fields.u32()?;
        let bytes = fields.secret()?;
        files.insert(
            path,
            Current {
                bytes,
                mode,
                uid,
                gid,
            },
        );
    }
    Ok(Some(Contents {
        data: has_data.then_some(data),
        files,
    }))
}

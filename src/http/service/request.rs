//! A request as the handlers see it (its head apart from its body), and where its handler runs.

/// A request as far as its head: what is known before any body is read.
pub struct Head {
    pub method: String,
    /// Still percent-encoded, as sent.
    pub path: String,
    pub query: Option<String>,
    /// Header names in lower case, one entry per header line, in the order sent.
    pub headers: Vec<(String, String)>,
    pub remote: Option<String>,
}

impl Head {
    /// The first value of a header, as Go's `Header.Get`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Request {
    pub head: Head,
    pub body: Vec<u8>,
}

impl std::ops::Deref for Request {
    type Target = Head;
    fn deref(&self) -> &Head {
        &self.head
    }
}

/// Where a request's handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Small pushes and deletes: quick, but they take the store's lock.
    Light,
    /// Scrapes, the JSON views, wipes, large or compressed bodies.
    Heavy,
}

/// What the service needs before the body is read, decided from the head alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Whether the body is read at all (a refusal, a scrape or a redirect needs none).
    pub wants_body: bool,
    /// Off the executor in this lane; `None`: in place (microseconds, no lock).
    pub lane: Option<Lane>,
}

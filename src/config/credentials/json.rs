//! Just enough JSON to read the credential endpoints' answers and the SSO
//! token cache: objects, strings, numbers and literals, no serde.

/// A JSON value; numbers keep their text.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Json {
    Null,
    Bool(bool),
    Number(String),
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The member `name` of an object.
    pub(super) fn get(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The member `name` if it is a non-empty string.
    pub(super) fn text(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Json::Text(text) if !text.is_empty() => Some(text),
            _ => None,
        }
    }
}

/// Parses a whole document; the error says where it went wrong, never
/// what the text around it held (it may be a secret).
pub(super) fn parse(text: &[u8]) -> Result<Json, String> {
    let mut parser = Parser { text, at: 0 };
    let value = parser.value(0)?;
    parser.space();
    match parser.at == text.len() {
        true => Ok(value),
        false => Err(parser.fail("text after the JSON value")),
    }
}

/// The deepest nesting read: a hostile answer cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

/// Whether `text` is a JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)?
/// ([eE] [+-]? [0-9]+)?`. Checked by its grammar, not by parsing it as a
/// float: the float parser's tables cost the static binary 15 KB.
fn is_number(text: &[u8]) -> bool {
    let digits = |text: &[u8]| text.iter().take_while(|b| b.is_ascii_digit()).count();
    let text = text.strip_prefix(b"-").unwrap_or(text);
    let whole = digits(text);
    if whole == 0 || (whole > 1 && text[0] == b'0') {
        return false;
    }
    let mut rest = &text[whole..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    if let Some(exponent) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exponent = exponent
            .strip_prefix(b"+")
            .or_else(|| exponent.strip_prefix(b"-"))
            .unwrap_or(exponent);
        let n = digits(exponent);
        return n > 0 && n == exponent.len();
    }
    rest.is_empty()
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn fail(&self, what: &str) -> String {
        format!("malformed JSON at byte {}: {what}", self.at)
    }

    fn space(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.space();
        let found = self.text.get(self.at) == Some(&byte);
        self.at += usize::from(found);
        found
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err(self.fail("nested too deep"));
        }
        self.space();
        match self.text.get(self.at) {
            Some(b'{') => {
                self.at += 1;
                let mut members = Vec::new();
                if self.eat(b'}') {
                    return Ok(Json::Object(members));
                }
                loop {
                    self.space();
                    let name = self.string()?;
                    if !self.eat(b':') {
                        return Err(self.fail("expected ':'"));
                    }
                    members.push((name, self.value(depth + 1)?));
                    if self.eat(b'}') {
                        return Ok(Json::Object(members));
                    }
                    if !self.eat(b',') {
                        return Err(self.fail("expected ',' or '}'"));
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Ok(Json::Array(items));
                    }
                    if !self.eat(b',') {
                        return Err(self.fail("expected ',' or ']'"));
                    }
                }
            }
            Some(b'"') => Ok(Json::Text(self.string()?)),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.at;
                while self
                    .text
                    .get(self.at)
                    .is_some_and(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
                {
                    self.at += 1;
                }
                let number = &self.text[start..self.at];
                match is_number(number) {
                    true => Ok(Json::Number(String::from_utf8_lossy(number).into_owned())),
                    false => Err(self.fail("a malformed number")),
                }
            }
            _ => {
                for (word, value) in [
                    ("true", Json::Bool(true)),
                    ("false", Json::Bool(false)),
                    ("null", Json::Null),
                ] {
                    if self.text[self.at..].starts_with(word.as_bytes()) {
                        self.at += word.len();
                        return Ok(value);
                    }
                }
                Err(self.fail("expected a value"))
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.text.get(self.at) != Some(&b'"') {
            return Err(self.fail("expected a string"));
        }
        self.at += 1;
        let mut bytes = Vec::new();
        loop {
            let Some(&byte) = self.text.get(self.at) else {
                return Err(self.fail("an unterminated string"));
            };
            self.at += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    let escaped = self.text.get(self.at).copied();
                    self.at += 1;
                    let plain = match escaped {
                        Some(b'u') => {
                            let code = self
                                .text
                                .get(self.at..self.at + 4)
                                .and_then(|hex| std::str::from_utf8(hex).ok())
                                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                                .ok_or_else(|| self.fail("a malformed \\u escape"))?;
                            self.at += 4;
                            let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                            bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                            continue;
                        }
                        Some(b'n') => b'\n',
                        Some(b't') => b'\t',
                        Some(b'r') => b'\r',
                        Some(b'b') => 8,
                        Some(b'f') => 12,
                        Some(c @ (b'"' | b'\\' | b'/')) => c,
                        _ => return Err(self.fail("a malformed escape")),
                    };
                    bytes.push(plain);
                }
                _ => bytes.push(byte),
            }
        }
        String::from_utf8(bytes).map_err(|_| self.fail("a string that is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_objects_with_escapes() {
        let json =
            parse(br#" {"a": {"b": "x\"y\u00e9"}, "n": -1.5e3, "l": [true, null]} "#).unwrap();
        assert_eq!(json.get("a").unwrap().text("b"), Some("x\"y\u{e9}"));
        assert_eq!(json.get("n"), Some(&Json::Number("-1.5e3".into())));
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        for good in ["0", "-1", "1.5", "1e3", "-0.25E-7", "1795003575000"] {
            assert!(is_number(good.as_bytes()), "{good}");
        }
        for bad in ["-", "01", "1.", ".5", "1e", "1e+", "1-2", "+1", "1.2.3"] {
            assert!(!is_number(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn malformed_documents_are_errors_that_quote_nothing() {
        for bad in [
            &b"{\"AccessKeyId\": \"secret"[..],
            b"{\"a\" 1}",
            b"{} x",
            b"",
            b"[1,",
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.starts_with("malformed JSON at byte "), "{error}");
            assert!(!error.contains("secret"), "{error}");
        }
    }
}

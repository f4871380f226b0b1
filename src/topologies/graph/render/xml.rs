//! A minimal XML reader, to check that the SVG is well-formed.

/// An element with its attributes (entities decoded), child elements and direct text.
#[derive(Debug, Default)]
pub(super) struct Element {
    pub(super) name: String,
    pub(super) attributes: Vec<(String, String)>,
    pub(super) children: Vec<Element>,
    pub(super) text: String,
}

impl Element {
    pub(super) fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// This element and all below it, in document order.
    pub(super) fn descendants(&self) -> Vec<&Element> {
        let mut all = vec![self];
        for child in &self.children {
            all.extend(child.descendants());
        }
        all
    }

    /// The elements below this one (or itself) with this name and `class` among their
    /// classes.
    pub(super) fn find(&self, name: &str, class: &str) -> Vec<&Element> {
        self.descendants()
            .into_iter()
            .filter(|e| {
                e.name == name
                    && e.attr("class")
                        .is_some_and(|c| c.split_whitespace().any(|c| c == class))
            })
            .collect()
    }

    /// The direct text of each `tspan` (or of a `text` without one) below this element.
    pub(super) fn texts(&self) -> Vec<&str> {
        self.descendants()
            .into_iter()
            .filter(|e| e.name == "tspan" || (e.name == "text" && e.children.is_empty()))
            .map(|e| e.text.as_str())
            .collect()
    }
}

const WHITE_SPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// Reads an XML document: an optional declaration, comments, exactly one root element;
/// tags must nest and match, attribute values be quoted, unique and free of `<`, and every
/// `&` start one of the five predefined entities or a character reference.
pub(super) fn parse_xml(input: &str) -> Result<Element, String> {
    let bad = input.chars().find(|&c| {
        matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
    });
    if let Some(c) = bad {
        return Err(format!("character {c:?} is not allowed in XML"));
    }
    let mut reader = XmlReader { rest: input };
    if reader.rest.starts_with("<?xml") {
        let end = reader
            .rest
            .find("?>")
            .ok_or("unterminated XML declaration")?;
        reader.rest = &reader.rest[end + 2..];
    }
    reader.misc()?;
    let root = reader.element()?;
    reader.misc()?;
    if !reader.rest.is_empty() {
        return Err(format!(
            "content after the root element: {:?}",
            reader.head()
        ));
    }
    Ok(root)
}

struct XmlReader<'a> {
    rest: &'a str,
}

impl XmlReader<'_> {
    fn head(&self) -> String {
        self.rest.chars().take(40).collect()
    }

    fn skip_white_space(&mut self) -> bool {
        let trimmed = self.rest.trim_start_matches(WHITE_SPACE);
        let skipped = trimmed.len() != self.rest.len();
        self.rest = trimmed;
        skipped
    }

    fn expect(&mut self, token: &str) -> Result<(), String> {
        self.rest = self
            .rest
            .strip_prefix(token)
            .ok_or_else(|| format!("expected {token:?} at {:?}", self.head()))?;
        Ok(())
    }

    /// White space and comments.
    fn misc(&mut self) -> Result<(), String> {
        loop {
            self.skip_white_space();
            if !self.rest.starts_with("<!--") {
                return Ok(());
            }
            self.comment()?;
        }
    }

    fn comment(&mut self) -> Result<(), String> {
        let end = self.rest[4..].find("-->").ok_or("unterminated comment")?;
        self.rest = &self.rest[4 + end + 3..];
        Ok(())
    }

    fn name(&mut self) -> Result<String, String> {
        let end = self
            .rest
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
            .unwrap_or(self.rest.len());
        let name = &self.rest[..end];
        if !name.starts_with(|c: char| c.is_alphabetic() || c == '_' || c == ':') {
            return Err(format!("expected a name at {:?}", self.head()));
        }
        self.rest = &self.rest[end..];
        Ok(name.to_string())
    }

    fn element(&mut self) -> Result<Element, String> {
        self.expect("<")?;
        let mut element = Element {
            name: self.name()?,
            ..Element::default()
        };
        loop {
            let spaced = self.skip_white_space();
            if let Some(rest) = self.rest.strip_prefix("/>") {
                self.rest = rest;
                return Ok(element);
            }
            if let Some(rest) = self.rest.strip_prefix('>') {
                self.rest = rest;
                break;
            }
            if !spaced {
                return Err(format!("expected white space at {:?}", self.head()));
            }
            let name = self.name()?;
            self.skip_white_space();
            self.expect("=")?;
            self.skip_white_space();
            let quote = self
                .rest
                .chars()
                .next()
                .filter(|&c| c == '"' || c == '\'')
                .ok_or_else(|| format!("unquoted value of {name}"))?;
            let end = self.rest[1..]
                .find(quote)
                .ok_or_else(|| format!("unterminated value of {name}"))?;
            let raw = &self.rest[1..1 + end];
            if raw.contains('<') {
                return Err(format!("'<' in the value of {name}"));
            }
            if element.attributes.iter().any(|(n, _)| *n == name) {
                return Err(format!("duplicate attribute {name}"));
            }
            element.attributes.push((name, decode_xml(raw)?));
            self.rest = &self.rest[2 + end..];
        }
        loop {
            if let Some(rest) = self.rest.strip_prefix("</") {
                self.rest = rest;
                let name = self.name()?;
                if name != element.name {
                    return Err(format!("</{name}> closes <{}>", element.name));
                }
                self.skip_white_space();
                self.expect(">")?;
                return Ok(element);
            } else if self.rest.starts_with("<!--") {
                self.comment()?;
            } else if self.rest.starts_with('<') {
                element.children.push(self.element()?);
            } else if self.rest.is_empty() {
                return Err(format!("<{}> is never closed", element.name));
            } else {
                let end = self.rest.find('<').unwrap_or(self.rest.len());
                let raw = &self.rest[..end];
                if raw.contains("]]>") {
                    return Err("\"]]>\" in text".to_string());
                }
                element.text.push_str(&decode_xml(raw)?);
                self.rest = &self.rest[end..];
            }
        }
    }
}

fn decode_xml(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let end = rest[amp..].find(';').ok_or("'&' without ';'")?;
        let entity = &rest[amp + 1..amp + end];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(decimal) = entity.strip_prefix('#') {
                    decimal.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown entity &{entity};"))?
            }
        };
        out.push(c);
        rest = &rest[amp + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xml_reader_rejects_malformed_documents() {
        assert!(
            parse_xml("<?xml version=\"1.0\"?>\n<a x=\"1\" y='2'><b/>t &amp; &#60;</a>\n").is_ok()
        );
        for bad in [
            "<a><b></a>",
            "<a x=\"1\"y=\"2\"/>",
            "<a x=1/>",
            "<a x=\"<\"/>",
            "<a x=\"1\" x=\"2\"/>",
            "<a>&foo;</a>",
            "<a>x & y</a>",
            "<a/><b/>",
            "<a>",
            "<a>\u{1}</a>",
        ] {
            assert!(parse_xml(bad).is_err(), "{bad:?} was accepted");
        }
    }
}

//! Presto's JSON functions as CloudTrail Lake's SQL has them, over JSON text:
//! `json_extract_scalar(json, path)` (the value at `path` as text when it is a string, number
//! or boolean; else null) and `json_extract(json, path)` (the value at `path` as JSON text;
//! null when absent). Paths are the JSONPath subset Presto documents: `$`, `.name`,
//! `["name"]` and `[index]`. Malformed JSON gives null, as in Presto; a malformed path is an
//! error of the query.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

/// Parses `$.a.b[0]["c d"]`.
pub fn parse_path(path: &str) -> std::result::Result<Vec<PathStep>, String> {
    let rest = path
        .trim()
        .strip_prefix('$')
        .ok_or_else(|| format!("JSON path {path:?} does not start with $"))?;
    let mut steps = Vec::new();
    let mut characters = rest.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '.' => {
                let mut name = String::new();
                while let Some(&next) = characters.peek() {
                    if next == '.' || next == '[' {
                        break;
                    }
                    name.push(next);
                    characters.next();
                }
                if name.is_empty() {
                    return Err(format!("JSON path {path:?} has an empty name"));
                }
                steps.push(PathStep::Key(name));
            }
            '[' => {
                let mut inside = String::new();
                let mut closed = false;
                let mut quoted = false;
                let mut quote: Option<char> = None;
                for next in characters.by_ref() {
                    match (quote, next) {
                        (None, ']') => {
                            closed = true;
                            break;
                        }
                        (None, '"' | '\'') if inside.is_empty() && !quoted => {
                            quote = Some(next);
                            quoted = true;
                        }
                        (Some(open), _) if next == open => quote = None,
                        _ => inside.push(next),
                    }
                }
                if !closed {
                    return Err(format!("JSON path {path:?} has an unclosed ["));
                }
                if quoted {
                    steps.push(PathStep::Key(inside));
                } else {
                    let index = inside.trim().parse::<usize>().map_err(|_| {
                        format!(
                            "JSON path {path:?}: [{inside}] is neither an index nor a quoted name"
                        )
                    })?;
                    steps.push(PathStep::Index(index));
                }
            }
            _ => {
                return Err(format!(
                    "JSON path {path:?} is not $, .name, [\"name\"] or [n]"
                ))
            }
        }
    }
    Ok(steps)
}

fn value_at<'a>(value: &'a Value, steps: &[PathStep]) -> Option<&'a Value> {
    steps.iter().try_fold(value, |value, step| match step {
        PathStep::Key(key) => value.get(key.as_str()),
        PathStep::Index(index) => value.get(*index),
    })
}

/// Which of the two functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Extraction {
    /// `json_extract_scalar`: strings, numbers and booleans as text.
    Scalar,
    /// `json_extract`: any value as JSON text.
    Json,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonExtract {
    extraction: Extraction,
    signature: Signature,
}

impl JsonExtract {
    fn new(extraction: Extraction) -> JsonExtract {
        JsonExtract {
            extraction,
            signature: Signature::exact(
                vec![DataType::Utf8, DataType::Utf8],
                Volatility::Immutable,
            ),
        }
    }

    fn extract(&self, json: &str, steps: &[PathStep]) -> Option<String> {
        let value: Value = serde_json::from_str(json).ok()?;
        let found = value_at(&value, steps)?;
        match (self.extraction, found) {
            (_, Value::Null) => None,
            (Extraction::Scalar, Value::String(text)) => Some(text.clone()),
            (Extraction::Scalar, Value::Number(number)) => Some(number.to_string()),
            (Extraction::Scalar, Value::Bool(flag)) => Some(flag.to_string()),
            (Extraction::Scalar, _) => None,
            (Extraction::Json, found) => Some(found.to_string()),
        }
    }
}

impl ScalarUDFImpl for JsonExtract {
    fn name(&self) -> &str {
        match self.extraction {
            Extraction::Scalar => "json_extract_scalar",
            Extraction::Json => "json_extract",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [json, path] = args.args.as_slice() else {
            return plan_err!("{} takes a JSON text and a path", self.name());
        };
        // The path is a constant in every query Lake documents; a column of paths is read row
        // by row.
        let constant_path = match path {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(path))) => {
                Some(parse_path(path).or_else(|error| exec_err!("{error}"))?)
            }
            ColumnarValue::Scalar(_) => return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
            ColumnarValue::Array(_) => None,
        };
        let rows = args.number_rows;
        let json_array = json.to_array(rows)?;
        let json_text = json_array.as_string::<i32>();
        let path_array = path.to_array(rows)?;
        let path_text = path_array.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(rows, rows * 16);
        for row in 0..rows {
            if json_text.is_null(row) {
                out.append_null();
                continue;
            }
            let extracted = match &constant_path {
                Some(steps) => self.extract(json_text.value(row), steps),
                None if path_text.is_null(row) => None,
                None => {
                    let steps =
                        parse_path(path_text.value(row)).or_else(|error| exec_err!("{error}"))?;
                    self.extract(json_text.value(row), &steps)
                }
            };
            out.append_option(extracted);
        }
        let array: ArrayRef = Arc::new(out.finish());
        Ok(ColumnarValue::Array(array))
    }
}

/// `json_extract_scalar(json, path)`.
pub fn json_extract_scalar() -> ScalarUDF {
    ScalarUDF::from(JsonExtract::new(Extraction::Scalar))
}

/// `json_extract(json, path)`.
pub fn json_extract() -> ScalarUDF {
    ScalarUDF::from(JsonExtract::new(Extraction::Json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_parsed() {
        assert_eq!(
            parse_path("$.requestParameters.bucketName").unwrap(),
            vec![
                PathStep::Key("requestParameters".into()),
                PathStep::Key("bucketName".into())
            ]
        );
        assert_eq!(
            parse_path("$.resources[0][\"ARN\"]").unwrap(),
            vec![
                PathStep::Key("resources".into()),
                PathStep::Index(0),
                PathStep::Key("ARN".into())
            ]
        );
        assert_eq!(parse_path("$").unwrap(), vec![]);
        assert!(parse_path("requestParameters").is_err());
        assert!(parse_path("$.a[0").is_err());
        assert!(parse_path("$..a").is_err());
    }

    #[test]
    fn values_are_extracted_as_presto_does() {
        let record = r#"{"a":{"b":"text","n":3,"t":true,"o":{"x":1},"z":null},"l":[{"c":"d"}]}"#;
        let scalar = JsonExtract::new(Extraction::Scalar);
        let json = JsonExtract::new(Extraction::Json);
        let at = |path: &str| parse_path(path).unwrap();
        assert_eq!(scalar.extract(record, &at("$.a.b")), Some("text".into()));
        assert_eq!(scalar.extract(record, &at("$.a.n")), Some("3".into()));
        assert_eq!(scalar.extract(record, &at("$.a.t")), Some("true".into()));
        assert_eq!(scalar.extract(record, &at("$.a.o")), None);
        assert_eq!(scalar.extract(record, &at("$.a.z")), None);
        assert_eq!(scalar.extract(record, &at("$.missing")), None);
        assert_eq!(scalar.extract(record, &at("$.l[0].c")), Some("d".into()));
        assert_eq!(
            json.extract(record, &at("$.a.o")),
            Some(r#"{"x":1}"#.into())
        );
        assert_eq!(json.extract(record, &at("$.a.b")), Some(r#""text""#.into()));
        assert_eq!(scalar.extract("not json", &at("$.a")), None);
    }
}

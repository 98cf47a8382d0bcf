//! Reading any Parquet file as rows of plain cells ([`Cell`]), so adapters never touch Arrow
//! types.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::Array;
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use crate::error::DataError;

/// A Parquet cell as plain data.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Cell>),
    Struct(Vec<(String, Cell)>),
}

impl Cell {
    pub fn get(&self, key: &str) -> Option<&Cell> {
        match self {
            Cell::Struct(fields) => fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .filter(|v| **v != Cell::Null),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Str(s) => Some(s),
            _ => None,
        }
    }

    /// As JSON; bytes become their length (`{"bytes": n}`), they are never copied into text.
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Int(i) => Value::from(*i),
            Cell::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Cell::Str(s) => Value::String(s.clone()),
            Cell::Bytes(b) => serde_json::json!({ "bytes": b.len() }),
            Cell::List(l) => Value::Array(l.iter().map(Cell::to_json).collect()),
            Cell::Struct(f) => {
                Value::Object(f.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

macro_rules! prim {
    ($a:expr, $i:expr, $t:ty, $variant:ident, $conv:ty) => {
        Cell::$variant($a.as_primitive::<$t>().value($i) as $conv)
    };
}

/// Cell `i` of an Arrow array.
pub fn cell(a: &dyn Array, i: usize) -> Cell {
    if a.is_null(i) {
        return Cell::Null;
    }
    match a.data_type() {
        DataType::Boolean => Cell::Bool(a.as_boolean().value(i)),
        DataType::Int8 => prim!(a, i, Int8Type, Int, i64),
        DataType::Int16 => prim!(a, i, Int16Type, Int, i64),
        DataType::Int32 => prim!(a, i, Int32Type, Int, i64),
        DataType::Int64 => prim!(a, i, Int64Type, Int, i64),
        DataType::UInt8 => prim!(a, i, UInt8Type, Int, i64),
        DataType::UInt16 => prim!(a, i, UInt16Type, Int, i64),
        DataType::UInt32 => prim!(a, i, UInt32Type, Int, i64),
        DataType::UInt64 => prim!(a, i, UInt64Type, Int, i64),
        DataType::Float32 => prim!(a, i, Float32Type, Float, f64),
        DataType::Float64 => prim!(a, i, Float64Type, Float, f64),
        DataType::Utf8 => Cell::Str(a.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Cell::Str(a.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Cell::Str(a.as_string_view().value(i).to_string()),
        DataType::Binary => Cell::Bytes(a.as_binary::<i32>().value(i).to_vec()),
        DataType::LargeBinary => Cell::Bytes(a.as_binary::<i64>().value(i).to_vec()),
        DataType::BinaryView => Cell::Bytes(a.as_binary_view().value(i).to_vec()),
        DataType::List(_) => list_cells(a.as_list::<i32>().value(i).as_ref()),
        DataType::LargeList(_) => list_cells(a.as_list::<i64>().value(i).as_ref()),
        DataType::FixedSizeList(_, _) => list_cells(a.as_fixed_size_list().value(i).as_ref()),
        DataType::Struct(fields) => {
            let s = a.as_struct();
            Cell::Struct(
                fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().clone(), cell(c.as_ref(), i)))
                    .collect(),
            )
        }
        _ => Cell::Null,
    }
}

fn list_cells(a: &dyn Array) -> Cell {
    Cell::List((0..a.len()).map(|j| cell(a, j)).collect())
}

/// A Parquet row: its 1-based number and its cells by column name.
pub type ParquetRow = (usize, Vec<(String, Cell)>);

/// Every row of a Parquet file as named cells, with its 1-based row number.
pub fn read_parquet_rows(path: &Path) -> Result<Vec<ParquetRow>, DataError> {
    let pq = |e: parquet::errors::ParquetError| DataError::Parquet {
        path: path.to_path_buf(),
        msg: e.to_string(),
    };
    let file = File::open(path).map_err(|e| DataError::read(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(pq)?
        .build()
        .map_err(pq)?;
    let mut out = Vec::new();
    for b in reader {
        let b = b.map_err(|e| DataError::Parquet {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        let names: Vec<String> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for i in 0..b.num_rows() {
            let row = names
                .iter()
                .zip(b.columns())
                .map(|(n, c)| (n.clone(), cell(c.as_ref(), i)))
                .collect();
            out.push((out.len() + 1, row));
        }
    }
    Ok(out)
}

/// The column names of a Parquet file.
pub fn parquet_columns(path: &Path) -> Result<Vec<String>, DataError> {
    let file = File::open(path).map_err(|e| DataError::read(path, e))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| DataError::Parquet {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    Ok(b.schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

//! Writes a CSV file as an .xlsx workbook of one sheet, numbers as number
//! cells and everything else as text, for the workbook benchmark:
//!
//!   cargo run --release -p audience-core --example csv_to_xlsx -- IN.csv OUT.xlsx [ROWS]
//!
//! ROWS limits the data rows written (all by default).

use rust_xlsxwriter::Workbook;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, rest @ ..] = args.as_slice() else {
        return Err("usage: csv_to_xlsx IN.csv OUT.xlsx [ROWS]".into());
    };
    let limit: usize = rest
        .first()
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(usize::MAX);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(input)?;
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    for (row, record) in reader.records().take(limit.saturating_add(1)).enumerate() {
        for (column, cell) in record?.iter().enumerate() {
            let (row, column) = (row as u32, column as u16);
            // Leading zeros and plus signs stay text, as spreadsheets keep them.
            match cell.parse::<f64>() {
                Ok(number) if row > 0 && !cell.starts_with(['0', '+']) && number.is_finite() => {
                    sheet.write_number(row, column, number)?;
                }
                _ if cell.is_empty() => {}
                _ => {
                    sheet.write_string(row, column, cell)?;
                }
            }
        }
    }
    book.save(output)?;
    Ok(())
}

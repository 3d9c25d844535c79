//! Writes the small workbooks the tests import and fuzzing starts from:
//!
//!   cargo run -p audience-core --example workbooks -- DIRECTORY
//!
//! contacts.xlsx (sheets Contacts and Leads: numbers, dates, booleans, a
//! formula, a blank row, a header with a blank and a merged cell, bad
//! rows), contacts.ods (the same kinds of cells, OpenDocument) and
//! empty.xlsx (one sheet without cells).

use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook, XlsxError};
use spreadsheet_ods::{Sheet, WorkBook};
use std::path::Path;

/// A row of the Contacts sheet, written as typed cells.
struct Row {
    email: &'static str,
    name: &'static str,
    budget: f64,
    signed_up: (u16, u8, u8),
    vip: bool,
    revenue: f64,
    phone: f64,
    company: &'static str,
}

fn contacts_xlsx() -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let sheet = book.add_worksheet().set_name("Contacts")?;
    for (column, name) in [
        "E-mail",
        "First Name",
        "Budget",
        "Signed up",
        "VIP",
        "Revenue",
        "Phone",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(0, column as u16, *name)?;
    }
    // Column H has no header; "Company" is merged over I:J.
    sheet.merge_range(0, 8, 0, 9, "Company", &Format::new())?;
    let rows = [
        Row {
            email: "ann@example.com",
            name: "Ann",
            budget: 1250.5,
            signed_up: (2026, 1, 2),
            vip: true,
            revenue: 99000.50000000001,
            phone: 4915112345678.0,
            company: "Acme",
        },
        Row {
            email: "Bob@Example.com",
            name: "Bob",
            budget: 80.0,
            signed_up: (2025, 12, 31),
            vip: false,
            revenue: 0.1 + 0.2,
            phone: 442071838750.0,
            company: "Initech",
        },
    ];
    for (i, contact) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        let (y, m, d) = contact.signed_up;
        sheet.write_string(row, 0, contact.email)?;
        sheet.write_string(row, 1, contact.name)?;
        sheet.write_number(row, 2, contact.budget)?;
        sheet.write_datetime_with_format(row, 3, &ExcelDateTime::from_ymd(y, m, d)?, &date)?;
        sheet.write_boolean(row, 4, contact.vip)?;
        sheet.write_number(row, 5, contact.revenue)?;
        sheet.write_number(row, 6, contact.phone)?;
        sheet.write_string(row, 7, "unheaded")?;
        sheet.write_string(row, 8, contact.company)?;
        sheet.write_string(row, 9, "under the merged cell")?;
    }
    // A blank row, then a formula's cached value and two bad rows.
    sheet.write_string(4, 0, "cy@example.com")?;
    sheet.write_formula(4, 2, Formula::new("=6*7").set_result("42"))?;
    sheet.write_string(5, 0, "not an email")?;
    sheet.write_string(6, 0, "dee@example.com")?;
    sheet.write_string(6, 3, "someday")?;
    let leads = book.add_worksheet().set_name("Leads")?;
    leads.write_string(0, 0, "email")?;
    leads.write_string(0, 1, "city")?;
    leads.write_string(1, 0, "eve@example.com")?;
    leads.write_string(1, 1, "Lisbon")?;
    book.save_to_buffer()
}

fn contacts_ods() -> Vec<u8> {
    let mut book = WorkBook::new_empty();
    let mut sheet = Sheet::new("People");
    for (column, name) in ["email", "signed_up", "budget", "vip"].iter().enumerate() {
        sheet.set_value(0, column as u32, *name);
    }
    sheet.set_value(1, 0, "fay@example.com");
    sheet.set_value(
        1,
        1,
        chrono::NaiveDate::from_ymd_opt(2026, 3, 4).expect("a date"),
    );
    sheet.set_value(1, 2, 1250.5);
    sheet.set_value(1, 3, true);
    book.push_sheet(sheet);
    spreadsheet_ods::write_ods_buf(&mut book, Vec::new()).expect("writing an ods")
}

fn empty_xlsx() -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    book.add_worksheet();
    book.save_to_buffer()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let directory = std::env::args()
        .nth(1)
        .ok_or("usage: workbooks DIRECTORY")?;
    let directory = Path::new(&directory);
    std::fs::create_dir_all(directory)?;
    std::fs::write(directory.join("contacts.xlsx"), contacts_xlsx()?)?;
    std::fs::write(directory.join("contacts.ods"), contacts_ods())?;
    std::fs::write(directory.join("empty.xlsx"), empty_xlsx()?)?;
    Ok(())
}

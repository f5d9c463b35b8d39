//! `push_hex` writes what the formatter would, for every length (it works in chunks).

#[test]
fn push_hex_is_lower_case_hex_of_every_byte_in_order() {
    let bytes: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    for n in [0, 1, 2, 4, 8, 31, 32, 33, 64, 65, 100, 512] {
        let input = &bytes[..n];
        let mut out = String::from("x");
        palisade_sip::push_hex(&mut out, input);
        let want: String = input.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(out, format!("x{want}"), "{n} bytes");
    }
}

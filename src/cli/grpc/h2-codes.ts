// HTTP/2 error codes (RFC 9113, section 7) that rnx sends in RST_STREAM or reads from one: node:http2 has them
// as constants, but importing it only for them would load it (~2 ms) before the connection is even started;
// connection.ts loads it while the TLS handshake is under way instead.
export const H2_NO_ERROR = 0x0;
export const H2_REFUSED_STREAM = 0x7;
export const H2_CANCEL = 0x8;
export const H2_ENHANCE_YOUR_CALM = 0xb;
export const H2_INADEQUATE_SECURITY = 0xc;

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeHeaderText,
  decodeText,
  parseContentType,
  parseMimeMessage,
  splitHeaderBlock,
  splitMultipart,
} from './mime-entity.ts';

describe('mime entity reading', () => {
  it('decodes quoted-printable text', () => {
    const root = parseMimeMessage(
      Buffer.from(
        'Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe, soft=\r\nbreak =3D done',
      ),
    );
    assert.equal(decodeText(root), 'Grüße, softbreak = done');
  });

  it('decodes B and Q encoded words', () => {
    assert.equal(decodeHeaderText('=?utf-8?B?w5xiZXJzaWNodA==?= heute'), 'Übersicht heute');
    assert.equal(
      decodeHeaderText('=?iso-8859-1?Q?K=E4se_und?= =?utf-8?Q?_Brot?='),
      'Käse und Brot',
    );
    assert.equal(decodeHeaderText('plain text'), 'plain text');
  });

  it('keeps the last part of a cut multipart', () => {
    const parts = splitMultipart('preamble\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo, cut', 'b');
    assert.deepEqual(parts, ['\r\none', '\r\ntwo, cut']);
  });

  it('drops the epilogue after the closing delimiter', () => {
    const parts = splitMultipart('--b\n\nonly\n--b--\nepilogue\n--b\n\nignored', 'b');
    assert.deepEqual(parts, ['\nonly']);
  });

  it('ends headers at a line of spaces', () => {
    const { headerText, body } = splitHeaderBlock('Subject: x\r\nFrom: a@b.example\r\n \r\nbody');
    assert.equal(headerText, 'Subject: x\r\nFrom: a@b.example\r\n');
    assert.equal(body, 'body');
  });

  it('reads quoted Content-Type parameters', () => {
    const parsed = parseContentType(
      'Multipart/Report; report-type=feedback-report;\r\n boundary="a;b \\"c\\""',
    );
    assert.equal(parsed.mediaType, 'multipart/report');
    assert.equal(parsed.parameters['report-type'], 'feedback-report');
    assert.equal(parsed.parameters.boundary, 'a;b "c"');
  });
});

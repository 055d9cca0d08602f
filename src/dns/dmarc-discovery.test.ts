import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  checkReportDestinations,
  discoverDmarcPolicy,
  discoverOrganizationalDomain,
  treeWalkTargets,
} from './dmarc-discovery.ts';
import { parseDmarcRecord } from './dmarc-record.ts';
import { txt, useTestDns } from './test-dns.ts';

const startDns = useTestDns();

describe('DMARC policy discovery', () => {
  test('walks at most eight names', () => {
    assert.deepEqual(treeWalkTargets('a.mail.example.com'), [
      'mail.example.com',
      'example.com',
      'com',
    ]);
    assert.deepEqual(treeWalkTargets('a.b.c.d.e.f.g.h.i.j.mail.example.com'), [
      'g.h.i.j.mail.example.com',
      'h.i.j.mail.example.com',
      'i.j.mail.example.com',
      'j.mail.example.com',
      'mail.example.com',
      'example.com',
      'com',
    ]);
  });

  test('uses the record of the domain itself', async () => {
    const { resolver } = await startDns({
      '_dmarc.example.com': txt('v=DMARC1; p=reject; rua=mailto:d@example.com'),
    });

    const result = await discoverDmarcPolicy('example.com', resolver);

    for (const discovery of Object.values(result)) {
      assert.equal(discovery.status, 'found', discovery.dialect);
      assert.equal(discovery.source?.relation, 'author_domain');
      assert.equal(discovery.applied?.strongest, 'reject');
    }
  });

  test('falls back to the organizational domain with sp', async () => {
    const { resolver } = await startDns({
      '_dmarc.example.com': txt('v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com'),
    });

    const result = await discoverDmarcPolicy('mail.example.com', resolver);

    for (const discovery of Object.values(result)) {
      assert.equal(discovery.status, 'found', discovery.dialect);
      assert.equal(discovery.source?.domain, 'example.com');
      assert.equal(discovery.source?.relation, 'organizational_domain');
      assert.equal(discovery.organizationalDomain, 'example.com');
      assert.equal(discovery.applied?.strongest, 'quarantine', discovery.dialect);
    }
    assert.deepEqual(
      result.rfc9989.steps.map((step) => [step.domain, step.status]),
      [
        ['mail.example.com', 'nxdomain'],
        ['example.com', 'ok'],
        ['com', 'nxdomain'],
      ],
    );
  });

  test('takes the policy of a public suffix with psd=y', async () => {
    const { resolver } = await startDns({
      '_dmarc.example': txt('v=DMARC1; p=reject; psd=y'),
    });

    const result = await discoverDmarcPolicy('shop.example', resolver);

    assert.equal(result.rfc9989.status, 'found');
    assert.equal(result.rfc9989.source?.relation, 'public_suffix_domain');
    assert.equal(result.rfc9989.organizationalDomain, 'shop.example');
    assert.equal(result.rfc9989.applied?.strongest, 'reject');
    assert.equal(result.rfc7489.status, 'not_found');
  });

  test('stops the walk at psd=n', async () => {
    const { resolver } = await startDns({
      '_dmarc.mail.example.com': txt('v=DMARC1; p=quarantine; psd=n'),
      '_dmarc.example.com': txt('v=DMARC1; p=reject'),
    });

    const organization = await discoverOrganizationalDomain('a.mail.example.com', resolver);

    assert.equal(organization.organizationalDomain, 'mail.example.com');
    assert.deepEqual(
      organization.steps.map((step) => step.domain),
      ['a.mail.example.com', 'mail.example.com'],
    );
  });

  test('moves on from several records only under RFC 9989', async () => {
    const { resolver } = await startDns({
      '_dmarc.mail.example.com': [
        { type: 'TXT', data: 'v=DMARC1; p=none' },
        { type: 'TXT', data: 'v=DMARC1; p=quarantine' },
      ],
      '_dmarc.example.com': txt('v=DMARC1; p=reject'),
    });

    const result = await discoverDmarcPolicy('mail.example.com', resolver);

    assert.equal(result.rfc9989.status, 'found');
    assert.equal(result.rfc9989.source?.domain, 'example.com');
    assert.equal(result.rfc9989.applied?.strongest, 'reject');
    assert.equal(result.rfc7489.status, 'not_found');
    assert.equal(result.rfc7489.steps[0]?.selection, 'multiple');
  });

  test('uses a given organizational domain for RFC 7489', async () => {
    const { resolver } = await startDns({
      '_dmarc.example.co.uk': txt('v=DMARC1; p=quarantine'),
    });

    const result = await discoverDmarcPolicy('mail.example.co.uk', resolver, {
      organizationalDomain: () => 'example.co.uk',
    });

    assert.equal(result.rfc7489.status, 'found');
    assert.equal(result.rfc7489.source?.domain, 'example.co.uk');
    assert.equal(result.rfc7489.applied?.strongest, 'quarantine');
  });

  test('reports a failed lookup instead of no record', async () => {
    const { resolver } = await startDns({
      '_dmarc.mail.example.com': { failure: 'servfail' },
      '_dmarc.example.com': txt('v=DMARC1; p=reject'),
    });

    const result = await discoverDmarcPolicy('mail.example.com', resolver);

    for (const discovery of Object.values(result)) {
      assert.equal(discovery.status, 'lookup_problem', discovery.dialect);
      assert.equal(discovery.source, null);
      assert.equal(discovery.problem?.status, 'servfail');
    }
  });

  test('finds nothing when no level has a record', async () => {
    const { resolver } = await startDns({ 'example.com': [{ type: 'A', address: '192.0.2.1' }] });

    const result = await discoverDmarcPolicy('example.com', resolver);

    assert.equal(result.rfc9989.status, 'not_found');
    assert.equal(result.rfc7489.status, 'not_found');
    assert.match(result.rfc9989.summary, /find no DMARC record/);
  });
});

describe('DMARC report destinations', () => {
  const record = parseDmarcRecord(
    'v=DMARC1; p=none; rua=mailto:agg@reports.example.net,mailto:dmarc@example.com; ruf=mailto:f@forensic.example.org',
  ).record;

  test('checks authorization outside the organization', async () => {
    const { resolver } = await startDns({
      '_dmarc.example.com': txt(record.text),
      'example.com': [{ type: 'MX', exchange: 'mx.example.com' }],
      '_dmarc.reports.example.net': txt('v=DMARC1; p=reject'),
      'reports.example.net': [{ type: 'MX', exchange: 'mx.reports.example.net' }],
      'example.com._report._dmarc.reports.example.net': txt('v=DMARC1'),
      '_dmarc.forensic.example.org': txt('v=DMARC1; p=none'),
      'forensic.example.org': [{ type: 'A', address: '192.0.2.8' }],
    });

    const { checks, findings } = await checkReportDestinations('example.com', record, resolver);

    assert.deepEqual(
      checks.map((check) => [check.uri, check.status, check.mailbox]),
      [
        ['mailto:agg@reports.example.net', 'authorized', 'mx'],
        ['mailto:dmarc@example.com', 'same_organization', 'mx'],
        ['mailto:f@forensic.example.org', 'not_authorized', 'no_mx'],
      ],
    );
    assert.equal(checks[2]?.checkedName, 'example.com._report._dmarc.forensic.example.org');
    assert.deepEqual(
      findings.map((item) => item.code),
      ['dmarc_report_destination_unauthorized', 'dmarc_report_mailbox_no_mx'],
    );
  });

  test('accepts a wildcard authorization', async () => {
    const { resolver } = await startDns({
      '*._report._dmarc.reports.example.net': txt('v=DMARC1;'),
      'reports.example.net': [{ type: 'MX', exchange: 'mx.reports.example.net' }],
    });
    const single = parseDmarcRecord('v=DMARC1; p=none; rua=mailto:agg@Reports.Example.NET').record;

    const { checks } = await checkReportDestinations('example.com', single, resolver);

    assert.equal(checks[0]?.status, 'authorized');
  });

  test('treats a subdomain mailbox as the same organization', async () => {
    const { resolver } = await startDns({
      '_dmarc.example.com': txt('v=DMARC1; p=none; rua=mailto:d@reports.example.com'),
      'reports.example.com': [{ type: 'MX', exchange: 'mx.example.com' }],
    });
    const sub = parseDmarcRecord('v=DMARC1; p=none; rua=mailto:d@reports.example.com').record;

    const { checks } = await checkReportDestinations('example.com', sub, resolver);

    assert.equal(checks[0]?.status, 'same_organization');
  });

  test('reports a lookup problem instead of a verdict', async () => {
    const { resolver } = await startDns({
      'reports.example.net': [{ type: 'MX', exchange: 'mx.reports.example.net' }],
      'example.com._report._dmarc.reports.example.net': { failure: 'servfail' },
    });
    const single = parseDmarcRecord('v=DMARC1; p=none; rua=mailto:agg@reports.example.net').record;

    const { checks, findings } = await checkReportDestinations('example.com', single, resolver);

    assert.equal(checks[0]?.status, 'lookup_problem');
    assert.deepEqual(
      findings.map((item) => item.code),
      ['dmarc_report_destination_unknown'],
    );
  });

  test('flags a mailbox domain that does not exist', async () => {
    const { resolver } = await startDns({});
    const single = parseDmarcRecord('v=DMARC1; p=none; rua=mailto:d@gone.example.com').record;

    const { checks, findings } = await checkReportDestinations('example.com', single, resolver);

    assert.equal(checks[0]?.mailbox, 'nxdomain');
    assert.ok(findings.some((item) => item.code === 'dmarc_report_mailbox_domain_missing'));
  });
});

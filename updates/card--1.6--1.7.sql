/* card--1.6--1.7.sql: the DBA's experience (issue 14) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.7'" to load this file. \quit

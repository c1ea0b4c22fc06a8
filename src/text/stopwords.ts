/**
 * Stop word lists that the stemming packages do not ship in the form Lucene uses. Browser-safe.
 *
 * Each list is the one Lucene's analyzer of that language uses by default, so an index built here
 * drops the same words as an Anserini/Lucene index of the same text.
 */

/**
 * Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (also Anserini's DefaultEnglishAnalyzer default):
 * deliberately short (33 words), unlike the Snowball English list, so BM25 figures match Anserini's.
 */
export const ENGLISH_STOP_WORDS: readonly string[] = (
  'a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with'
).split(' ');

/**
 * The Snowball Spanish stop list (BSD licence, https://snowballstem.org/license.html), as shipped
 * in Lucene's snowball/spanish_stop.txt and used by its SpanishAnalyzer. The list in
 * @orama/stopwords is a different, much longer one, hence this copy.
 */
export const SPANISH_STOP_WORDS: readonly string[] = (
  'de la que el en y a los del se las por un para con no una su al lo como más pero sus le ya o este sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos durante todos uno les ni contra otros ese eso ante ellos e esto mí antes algunos qué unos yo otro otras otra él tanto esa estos mucho quienes nada muchos cual poco ella estar estas algunas algo nosotros mi mis tú te ti tu tus ellas nosotras vosotros vosotras os mío mía míos mías tuyo tuya tuyos tuyas suyo suya suyos suyas nuestro nuestra nuestros nuestras vuestro vuestra vuestros vuestras esos esas estoy estás está estamos estáis están esté estés estemos estéis estén estaré estarás estará estaremos estaréis estarán estaría estarías estaríamos estaríais estarían estaba estabas estábamos estabais estaban estuve estuviste estuvo estuvimos estuvisteis estuvieron estuviera estuvieras estuviéramos estuvierais estuvieran estuviese estuvieses estuviésemos estuvieseis estuviesen estando estad he has ha hemos habéis han haya hayas hayamos hayáis hayan habré habrás habrá habremos habréis habrán habría habrías habríamos habríais habrían había habías habíamos habíais habían hube hubiste hubo hubimos hubisteis hubieron hubiera hubieras hubiéramos hubierais hubieran hubiese hubieses hubiésemos hubieseis hubiesen habiendo habido habida habidos habidas soy eres es somos sois son sea seas seamos seáis sean seré serás será seremos seréis serán sería serías seríamos seríais serían era eras éramos erais eran fui fuiste fue fuimos fuisteis fueron fuera fueras fuéramos fuerais fueran fuese fueses fuésemos fueseis fuesen siendo sido tengo tienes tiene tenemos tenéis tienen tenga tengas tengamos tengáis tengan tendré tendrás tendrá tendremos tendréis tendrán tendría tendrías tendríamos tendríais tendrían tenía tenías teníamos teníais tenían tuve tuviste tuvo tuvimos tuvisteis tuvieron tuviera tuvieras tuviéramos tuvierais tuvieran tuviese tuviesen tuvieses tuviésemos tuvieseis teniendo tenido tenida tenidos tenidas tened'
).split(' ');
